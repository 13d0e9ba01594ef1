import CBLAS
import Foundation
import Synchronization

/// Data parallelism over whole sequences: the model's passes split the batch into `parts` fixed, contiguous ranges of
/// sequences and run each range on its own thread, with OpenBLAS on one thread inside. Every sequence is independent in
/// the forward pass and in the input gradients; weight gradients go to one buffer per part and are summed in part order
/// afterwards, so results depend only on the number of parts, never on timing or on which thread ran a part.
enum Parallel {
    /// How many parts a batch of `sequences` splits into: one per configured thread, at most one per sequence.
    static func parts(_ sequences: Int, limit: Int? = nil) -> Int { max(1, min(limit ?? BLAS.threads, sequences)) }

    /// The range of `total` items that part `p` of `parts` owns.
    @inline(__always)
    static func range(_ p: Int, of parts: Int, _ total: Int) -> Range<Int> {
        (total * p / parts)..<(total * (p + 1) / parts)
    }

    /// Runs body(0..<parts), part 0 on the calling thread and the others on persistent workers; returns when all
    /// are done. Allocates nothing once the workers exist.
    static func run(_ parts: Int, _ body: (Int) -> Void) {
        if parts == 1 { body(0); return }
        BLAS.withOneThreadPerCaller { WorkerPool.shared.run(parts, body) }
    }
}

/// Persistent worker threads. A run publishes the job and bumps a generation counter; each worker spins briefly on
/// the counter (passes follow one another closely) and then sleeps on a condition variable.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t(), done = pthread_cond_t()
    private var workers = 0
    /// The current job and its number of parts; valid while `pending` > 0.
    private var job: ((Int) -> Void)?
    private var jobParts = 0
    /// Callers take turns (tests may run models on several threads at once).
    private let callerLock = NSLock()

    private init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        pthread_cond_init(&done, nil)
    }

    func run(_ parts: Int, _ body: (Int) -> Void) {
        callerLock.lock()
        defer { callerLock.unlock() }
        while workers < parts - 1 { startWorker(index: workers + 1) }
        withoutActuallyEscaping(body) { body in
            pthread_mutex_lock(&mutex)
            job = body
            jobParts = parts
            pending.store(parts - 1, ordering: .sequentiallyConsistent)
            generation.add(1, ordering: .sequentiallyConsistent)
            pthread_cond_broadcast(&wake)
            pthread_mutex_unlock(&mutex)
            body(0)
            // Wait for the others: spin a little, then sleep.
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 && spins < 20_000 { spins += 1 }
            if pending.load(ordering: .acquiring) > 0 {
                pthread_mutex_lock(&mutex)
                while pending.load(ordering: .acquiring) > 0 { pthread_cond_wait(&done, &mutex) }
                pthread_mutex_unlock(&mutex)
            }
            job = nil
        }
    }

    /// Calls the job; the reference to it is gone before the part counts as done (the job's closure must not
    /// outlive `run`).
    @inline(never)
    private func runJob(_ index: Int) {
        job.unsafelyUnwrapped(index)
    }

    private func startWorker(index: Int) {
        workers += 1
        let seen = generation.load(ordering: .sequentiallyConsistent)
        let thread = Thread { [unowned self] in self.workerLoop(index: index, seen: seen) }
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func workerLoop(index: Int, seen: Int) {
        var seen = seen
        while true {
            // Wait for a new generation: spin a little, then sleep.
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && spins < 20_000 { spins += 1 }
            pthread_mutex_lock(&mutex)
            while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(&wake, &mutex) }
            seen = generation.load(ordering: .acquiring)
            let participates = index < jobParts
            pthread_mutex_unlock(&mutex)
            guard participates else { continue }
            runJob(index)
            if pending.subtract(1, ordering: .sequentiallyConsistent).newValue == 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_signal(&done)
                pthread_mutex_unlock(&mutex)
            }
        }
    }
}
