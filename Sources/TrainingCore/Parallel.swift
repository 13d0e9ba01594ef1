import CBLAS
import Foundation

/// Data parallelism over whole sequences: the model's passes split the batch into `parts` fixed, contiguous ranges of
/// sequences and run each range on its own thread, with OpenBLAS on one thread inside. Every sequence is independent in
/// the forward pass and in the input gradients; weight gradients go to one buffer per part and are summed in part order
/// afterwards, so results depend only on the number of parts, never on timing.
enum Parallel {
    /// How many parts a batch of `sequences` splits into: one per configured thread, at most one per sequence.
    static func parts(_ sequences: Int, limit: Int? = nil) -> Int { max(1, min(limit ?? BLAS.threads, sequences)) }

    /// The range of `total` items that part `p` of `parts` owns.
    @inline(__always)
    static func range(_ p: Int, of parts: Int, _ total: Int) -> Range<Int> {
        (total * p / parts)..<(total * (p + 1) / parts)
    }

    /// Runs body(0..<parts), concurrently when parts > 1; returns when all are done.
    static func run(_ parts: Int, _ body: (Int) -> Void) {
        if parts == 1 { body(0); return }
        // The parts touch disjoint rows and buffers; concurrentPerform returns only when all have finished.
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let work = body
            BLAS.withOneThreadPerCaller {
                DispatchQueue.concurrentPerform(iterations: parts) { work($0) }
            }
        }
    }
}
