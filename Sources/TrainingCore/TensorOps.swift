import CBLAS
import Foundation
import Synchronization

/// The scalar types the model runs in: Float for training, Double for the finite-difference gradient checks.
public protocol Real: BinaryFloatingPoint, SIMDScalar, Sendable where RawSignificand: FixedWidthInteger {
    /// Row-major C = alpha · op(A) · op(B) + beta · C.
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Self,
        a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    /// exp of eight lanes at once; for Float a polynomial within 2 ulp, for Double the library exp per lane.
    static func exp(_ x: SIMD8<Self>) -> SIMD8<Self>
    /// Lane-wise maximum. (Comparisons of generic SIMD vectors build their masks lane by lane; concrete ones do not.)
    static func max(_ a: SIMD8<Self>, _ b: SIMD8<Self>) -> SIMD8<Self>
    /// v with lanes k..<8 set to zero.
    static func keepFirst(_ v: SIMD8<Self>, _ k: Int) -> SIMD8<Self>
}

@inline(__always) private func trans(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: Real {
    @inline(__always)
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        BLAS.useThreads(for: m * n * k)
        cblas_sgemm(
            CblasRowMajor, trans(transA), trans(transB), Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    @inline(__always) public static func exp(_ x: Float) -> Float { expf(x) }
    @inline(__always) public static func log(_ x: Float) -> Float { logf(x) }

    /// Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2, exp(r) by a degree-6 polynomial, 2ⁿ through the exponent bits.
    /// Only SSE2 operations (n rounded and converted by adding 1.5·2²³), so it vectorises on the baseline x86-64
    /// target. Inputs are clamped to [−87.3, 88]: below, the result is ~1.2e−38 instead of a subnormal or 0.
    @inline(__always) public static func keepFirst(_ v: SIMD8<Float>, _ k: Int) -> SIMD8<Float> {
        v.replacing(with: 0, where: SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .>= SIMD8<Int32>(repeating: Int32(k)))
    }
    @inline(__always) public static func max(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        a.replacing(with: b, where: b .> a)
    }
    @inline(__always) public static func exp(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let lo = SIMD8<Float>(repeating: -87.33654), hi = SIMD8<Float>(repeating: 88)
        var x = v.replacing(with: lo, where: v .< lo)
        x = x.replacing(with: hi, where: x .> hi)
        let magic = SIMD8<Float>(repeating: 12582912)
        let nm = x * 1.44269504088896341 + magic
        let n = nm - magic
        let r = x - n * 0.693359375 + n * 2.12194440e-4
        var p = SIMD8<Float>(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * (r * r) + r + 1
        // The low bits of nm hold n + 0x400000 above the magic's 0x4B400000.
        let bits = (unsafeBitCast(nm, to: SIMD8<Int32>.self) &- (0x4B40_0000 - 127)) &<< 23
        return p * unsafeBitCast(bits, to: SIMD8<Float>.self)
    }
}

extension Double: Real {
    @inline(__always)
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
        a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        BLAS.useThreads(for: m * n * k)
        cblas_dgemm(
            CblasRowMajor, trans(transA), trans(transB), Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    @inline(__always) public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    @inline(__always) public static func log(_ x: Double) -> Double { Foundation.log(x) }
    @inline(__always) public static func keepFirst(_ v: SIMD8<Double>, _ k: Int) -> SIMD8<Double> {
        v.replacing(with: 0, where: SIMD8<Int64>(0, 1, 2, 3, 4, 5, 6, 7) .>= SIMD8<Int64>(repeating: Int64(k)))
    }
    @inline(__always) public static func max(_ a: SIMD8<Double>, _ b: SIMD8<Double>) -> SIMD8<Double> {
        a.replacing(with: b, where: b .> a)
    }
    @inline(__always) public static func exp(_ v: SIMD8<Double>) -> SIMD8<Double> {
        var r = SIMD8<Double>()
        for i in 0..<8 { r[i] = Foundation.exp(v[i]) }
        return r
    }
}

public enum BLAS {
    public static var config: String { String(cString: openblas_get_config()) }
    public static var threads: Int { configured }
    /// Products below this many multiply-adds (per-head attention, rank-r adapter products) run on one thread:
    /// on 2 cores the hand-off costs more than the second thread saves there.
    public static let singleThreadWork = 1 << 19

    nonisolated(unsafe) private static var configured = Int(openblas_get_num_threads())
    nonisolated(unsafe) private static var active = configured

    public static func setThreads(_ n: Int) {
        configured = n
        active = n
        openblas_set_num_threads(Int32(n))
    }

    /// Non-zero while our own threads run parts of a pass: every product then runs on its caller's thread alone.
    private static let oneThreadPerCaller = Atomic<Int>(0)

    @inline(__always)
    static func useThreads(for work: Int) {
        let want = work < singleThreadWork || oneThreadPerCaller.load(ordering: .relaxed) > 0 ? 1 : configured
        if want != active {
            active = want
            openblas_set_num_threads(Int32(want))
        }
    }

    /// Runs body with OpenBLAS on one thread, so callers on several threads of ours never hand work to its pool.
    /// The setting changes before body starts its threads; inside, useThreads never changes it, so they do not race.
    static func withOneThreadPerCaller(_ body: () -> Void) {
        oneThreadPerCaller.add(1, ordering: .sequentiallyConsistent)
        if active != 1 { active = 1; openblas_set_num_threads(1) }
        body()
        oneThreadPerCaller.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Applies OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) explicitly, so the count is the same whoever set it.
    public static func applyEnvironmentThreads() {
        let env = ProcessInfo.processInfo.environment
        if let n = (env["OPENBLAS_NUM_THREADS"] ?? env["OMP_NUM_THREADS"]).flatMap(Int.init), n > 0 { setThreads(n) }
    }
}

/// A dense row-major buffer, allocated once and owned for its whole life.
public final class Tensor<T: Real>: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<T>

    public init(_ shape: [Int]) {
        self.shape = shape
        count = shape.reduce(1, *)
        data = .allocate(capacity: max(count, 1))
        data.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ shape: [Int], values: [T]) {
        self.init(shape)
        precondition(values.count == count, "tensor of shape \(shape) needs \(count) values, got \(values.count)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit { data.deallocate() }

    public var buffer: UnsafeMutableBufferPointer<T> { .init(start: data, count: count) }
    public var array: [T] { Array(buffer) }
    public func zero() { data.update(repeating: 0, count: count) }
    public func copy(from other: Tensor<T>) {
        precondition(other.count == count)
        data.update(from: other.data, count: count)
    }
    public func clone() -> Tensor<T> { let t = Tensor(shape); t.copy(from: self); return t }
}

// MARK: - Matrix products. Weights use PyTorch nn.Linear layout [out, in].

/// y = x Wᵀ (+ beta·y): x [n, in], W [out, in], y [n, out].
@inline(__always)
@_specialize(where T == Float)
func linearForward<T: Real>(
    _ y: UnsafeMutablePointer<T>, _ x: UnsafePointer<T>, _ w: UnsafePointer<T>,
    rows n: Int, in inF: Int, out outF: Int, alpha: T = 1, beta: T = 0
) {
    T.gemm(
        transA: false, transB: true, m: n, n: outF, k: inF, alpha: alpha, a: x, lda: inF, b: w, ldb: inF,
        beta: beta, c: y, ldc: outF)
}

/// dx = dy W (+ beta·dx).
@inline(__always)
@_specialize(where T == Float)
func linearBackwardInput<T: Real>(
    _ dx: UnsafeMutablePointer<T>, _ dy: UnsafePointer<T>, _ w: UnsafePointer<T>,
    rows n: Int, in inF: Int, out outF: Int, alpha: T = 1, beta: T = 0
) {
    T.gemm(
        transA: false, transB: false, m: n, n: inF, k: outF, alpha: alpha, a: dy, lda: outF, b: w, ldb: inF,
        beta: beta, c: dx, ldc: inF)
}

/// dW += dyᵀ x.
@inline(__always)
@_specialize(where T == Float)
func linearBackwardWeight<T: Real>(
    _ dw: UnsafeMutablePointer<T>, _ dy: UnsafePointer<T>, _ x: UnsafePointer<T>,
    rows n: Int, in inF: Int, out outF: Int, alpha: T = 1
) {
    T.gemm(
        transA: true, transB: false, m: outF, n: inF, k: n, alpha: alpha, a: dy, lda: outF, b: x, ldb: inF,
        beta: 1, c: dw, ldc: inF)
}

// MARK: - Vector helpers (SIMD; the reductions would not vectorise on their own because of FP ordering).

@inline(__always)
@_specialize(where T == Float)
func dot<T: Real>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ n: Int) -> T {
    var acc = SIMD8<T>()
    var i = 0
    while i + 8 <= n {
        acc += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<T>.self) * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<T>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

@inline(__always)
func load8<T: Real>(_ p: UnsafePointer<T>) -> SIMD8<T> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<T>.self) }

@inline(__always)
func store8<T: Real>(_ v: SIMD8<T>, _ p: UnsafeMutablePointer<T>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<T>.self) }

/// max of p[0..<n], n ≥ 1.
@inline(__always)
@_specialize(where T == Float)
func maximum<T: Real>(_ p: UnsafePointer<T>, _ n: Int) -> T {
    var i = 0, m = p[0]
    if n >= 8 {
        var acc = load8(p)
        i = 8
        while i + 8 <= n { acc = T.max(acc, load8(p + i)); i += 8 }
        m = acc.max()
    }
    while i < n { m = Swift.max(m, p[i]); i += 1 }
    return m
}

/// p[j] = exp(p[j] − shift) for j < n; returns their sum.
@inline(__always)
@_specialize(where T == Float)
func expShiftSum<T: Real>(_ p: UnsafeMutablePointer<T>, _ n: Int, shift: T) -> T {
    var acc = SIMD8<T>(), i = 0
    let s8 = SIMD8<T>(repeating: shift)
    while i + 8 <= n {
        let e = T.exp(load8(p + i) - s8)
        store8(e, p + i)
        acc += e
        i += 8
    }
    var sum = acc.sum()
    while i < n { let e = T.exp(p[i] - shift); p[i] = e; sum += e; i += 1 }
    return sum
}

/// sum of exp(p[j] − shift) for j < n, leaving p alone.
@inline(__always)
@_specialize(where T == Float)
func expShiftSumOnly<T: Real>(_ p: UnsafePointer<T>, _ n: Int, shift: T) -> T {
    var acc = SIMD8<T>(), i = 0
    let s8 = SIMD8<T>(repeating: shift)
    while i + 8 <= n { acc += T.exp(load8(p + i) - s8); i += 8 }
    var sum = acc.sum()
    while i < n { sum += T.exp(p[i] - shift); i += 1 }
    return sum
}

/// y *= alpha
@inline(__always)
@_specialize(where T == Float)
func multiply<T: Real>(_ y: UnsafeMutablePointer<T>, by alpha: T, _ n: Int) {
    for i in 0..<n { y[i] *= alpha }
}

/// y[j] *= alpha for j < keep, y[j] = 0 for keep ≤ j < width: one loop, where a separate clear of the few
/// trailing values would be a memset call per row.
@inline(__always)
@_specialize(where T == Float)
func multiply<T: Real>(_ y: UnsafeMutablePointer<T>, by alpha: T, keep: Int, width: Int) {
    let a8 = SIMD8<T>(repeating: alpha)
    var j = 0
    while j + 8 <= width {
        let v = load8(y + j) * a8
        store8(j + 8 <= keep ? v : T.keepFirst(v, keep - j), y + j)
        j += 8
    }
    while j < width { y[j] = j < keep ? y[j] * alpha : 0; j += 1 }
}

/// d[j] = p[j] · (d[j] − rowDot), the softmax backward of one row.
@inline(__always)
@_specialize(where T == Float)
func softmaxBackwardRow<T: Real>(_ d: UnsafeMutablePointer<T>, _ p: UnsafePointer<T>, _ rowDot: T, _ n: Int) {
    let r8 = SIMD8<T>(repeating: rowDot)
    var j = 0
    while j + 8 <= n { store8(load8(p + j) * (load8(d + j) - r8), d + j); j += 8 }
    while j < n { d[j] = p[j] * (d[j] - rowDot); j += 1 }
}

/// y += alpha · x
@inline(__always)
@_specialize(where T == Float)
func axpy<T: Real>(_ y: UnsafeMutablePointer<T>, _ x: UnsafePointer<T>, _ alpha: T, _ n: Int) {
    for i in 0..<n { y[i] += alpha * x[i] }
}

@inline(__always)
@_specialize(where T == Float)
func add<T: Real>(_ y: UnsafeMutablePointer<T>, _ x: UnsafePointer<T>, _ n: Int) {
    for i in 0..<n { y[i] += x[i] }
}

// MARK: - Embedding

@_specialize(where T == Float)
func embeddingForward<T: Real>(
    _ out: UnsafeMutablePointer<T>, _ table: UnsafePointer<T>, _ tokens: UnsafePointer<Int32>,
    rows n: Int, dim: Int
) {
    for r in 0..<n { (out + r * dim).update(from: table + Int(tokens[r]) * dim, count: dim) }
}

@_specialize(where T == Float)
func embeddingBackward<T: Real>(
    _ dTable: UnsafeMutablePointer<T>, _ dOut: UnsafePointer<T>, _ tokens: UnsafePointer<Int32>,
    rows n: Int, dim: Int
) {
    for r in 0..<n { add(dTable + Int(tokens[r]) * dim, dOut + r * dim, dim) }
}

// MARK: - RMSNorm: y = w ⊙ (x · rsqrt(mean(x²) + eps)), as Hugging Face LlamaRMSNorm.

@_specialize(where T == Float)
func rmsNormForward<T: Real>(
    _ y: UnsafeMutablePointer<T>, _ invRms: UnsafeMutablePointer<T>,
    _ x: UnsafePointer<T>, _ w: UnsafePointer<T>, rows n: Int, dim: Int, eps: T
) {
    for r in 0..<n {
        let xr = x + r * dim, yr = y + r * dim
        let inv = 1 / (dot(xr, xr, dim) / T(dim) + eps).squareRoot()
        invRms[r] = inv
        for i in 0..<dim { yr[i] = w[i] * (xr[i] * inv) }
    }
}

/// x += residual, then y = rmsNorm(x): one pass over each row while it is in cache.
@_specialize(where T == Float)
func residualRMSNormForward<T: Real>(
    _ y: UnsafeMutablePointer<T>, _ invRms: UnsafeMutablePointer<T>, _ x: UnsafeMutablePointer<T>,
    residual: UnsafePointer<T>, _ w: UnsafePointer<T>, rows n: Int, dim: Int, eps: T
) {
    for r in 0..<n {
        let xr = x + r * dim, rr = residual + r * dim, yr = y + r * dim
        var acc = SIMD8<T>(), i = 0
        while i + 8 <= dim {
            let v = load8(xr + i) + load8(rr + i)
            store8(v, xr + i)
            acc += v * v
            i += 8
        }
        var ss = acc.sum()
        while i < dim { xr[i] += rr[i]; ss += xr[i] * xr[i]; i += 1 }
        let inv = 1 / (ss / T(dim) + eps).squareRoot()
        invRms[r] = inv
        for i in 0..<dim { yr[i] = w[i] * (xr[i] * inv) }
    }
}

/// dx += ∂L/∂x; dw += ∂L/∂w when dw is given. With n = x·inv: dx = inv · (dn − n · mean(dn ⊙ n)), dn = dy ⊙ w.
@_specialize(where T == Float)
func rmsNormBackward<T: Real>(
    _ dx: UnsafeMutablePointer<T>, _ dw: UnsafeMutablePointer<T>?, _ dy: UnsafePointer<T>,
    _ x: UnsafePointer<T>, _ w: UnsafePointer<T>, _ invRms: UnsafePointer<T>,
    rows n: Int, dim: Int
) {
    for r in 0..<n {
        let xr = x + r * dim, dyr = dy + r * dim, dxr = dx + r * dim
        let inv = invRms[r]
        var acc = SIMD8<T>(), i = 0
        while i + 8 <= dim { acc += load8(dyr + i) * load8(w + i) * load8(xr + i); i += 8 }
        var s = acc.sum()
        while i < dim { s += dyr[i] * w[i] * xr[i]; i += 1 }
        let c = s * inv * inv / T(dim)
        for i in 0..<dim { dxr[i] += inv * (dyr[i] * w[i] - xr[i] * c) }
        if let dw { for i in 0..<dim { dw[i] += dyr[i] * xr[i] * inv } }
    }
}

// MARK: - Rotary embeddings, Hugging Face rotate_half convention: element j pairs with j + headDim/2.

/// cos/sin tables [maxPositions, headDim/2]; angles in Float32 as transformers computes them.
public struct RotaryTables<T: Real> {
    public let cos: [T], sin: [T]
    public let half: Int
    public init(maxPositions: Int, headDim: Int, theta: Double) {
        half = headDim / 2
        var c = [T](repeating: 0, count: maxPositions * half), s = c
        for i in 0..<half {
            let invFreq = Float(1) / Foundation.pow(Float(theta), Float(2 * i) / Float(headDim))
            for p in 0..<maxPositions {
                let angle = Float(p) * invFreq
                c[p * half + i] = T(Foundation.cos(angle))
                s[p * half + i] = T(Foundation.sin(angle))
            }
        }
        cos = c; sin = s
    }
}

/// Rotates every head of every row in place; the row's position is its index within its sequence.
/// `inverse` applies the transpose rotation, which is the backward pass.
@_specialize(where T == Float)
func rope<T: Real>(
    _ x: UnsafeMutablePointer<T>, rows n: Int, seqLen t: Int, heads: Int, headDim: Int,
    tables: RotaryTables<T>, inverse: Bool = false, firstPosition: Int = 0
) {
    let half = headDim / 2, width = heads * headDim
    tables.cos.withUnsafeBufferPointer { cosTable in
        tables.sin.withUnsafeBufferPointer { sinTable in
            for r in 0..<n {
                let position = firstPosition + r % t
                let c = cosTable.baseAddress! + position * half, s = sinTable.baseAddress! + position * half
                for h in 0..<heads {
                    let v = x + r * width + h * headDim
                    for j in 0..<half {
                        let a = v[j], b = v[j + half], sj = inverse ? -s[j] : s[j]
                        v[j] = a * c[j] - b * sj
                        v[j + half] = b * c[j] + a * sj
                    }
                }
            }
        }
    }
}

// MARK: - Causal multi-head attention (grouped kv heads as repeat_interleave), per (sequence, head) and block of queries.

struct AttentionShape {
    var batch: Int, seqLen: Int, heads: Int, kvHeads: Int, headDim: Int
    /// Queries go in blocks of about this many rows; a block attends only to the keys up to its last query, so the
    /// products skip most of the masked upper triangle (5/8 of the square is computed with 4 blocks, 3/4 with 2).
    var queryBlock = 32
    var qWidth: Int { heads * headDim }
    var kvWidth: Int { kvHeads * headDim }
    var group: Int { heads / kvHeads }
    var probsCount: Int { batch * heads * seqLen * seqLen }

    /// The query blocks of a sequence: how many, and the rows of each (the last may be shorter).
    var blocks: (count: Int, size: Int) {
        let count = max(1, (seqLen + queryBlock / 2) / queryBlock)
        return (count, (seqLen + count - 1) / count)
    }
}

/// out = softmax(q kᵀ / √d + causal mask) v per head; keeps the probabilities for the backward pass: [b, heads, t, t],
/// with row i defined on columns 0...i and exact zeros up to the end of its query block (the rest is never read).
@_specialize(where T == Float)
func attentionForward<T: Real>(
    _ out: UnsafeMutablePointer<T>, _ probs: UnsafeMutablePointer<T>,
    _ q: UnsafePointer<T>, _ k: UnsafePointer<T>, _ v: UnsafePointer<T>, _ s: AttentionShape
) {
    let t = s.seqLen, scale = 1 / T(s.headDim).squareRoot(), blocks = s.blocks
    for b in 0..<s.batch {
        for h in 0..<s.heads {
            let kvh = h / s.group
            let qp = q + b * t * s.qWidth + h * s.headDim
            let kp = k + b * t * s.kvWidth + kvh * s.headDim
            let vp = v + b * t * s.kvWidth + kvh * s.headDim
            let op = out + b * t * s.qWidth + h * s.headDim
            let p = probs + (b * s.heads + h) * t * t
            for qb in 0..<blocks.count {
                let i0 = qb * blocks.size, i1 = min(t, i0 + blocks.size)
                guard i0 < i1 else { break }
                let pb = p + i0 * t
                T.gemm(
                    transA: false, transB: true, m: i1 - i0, n: i1, k: s.headDim, alpha: scale,
                    a: qp + i0 * s.qWidth, lda: s.qWidth, b: kp, ldb: s.kvWidth, beta: 0, c: pb, ldc: t)
                for i in i0..<i1 {
                    let row = p + i * t
                    let sum = expShiftSum(row, i + 1, shift: maximum(row, i + 1))
                    multiply(row, by: 1 / sum, keep: i + 1, width: i1)
                }
                T.gemm(
                    transA: false, transB: false, m: i1 - i0, n: s.headDim, k: i1, alpha: 1,
                    a: pb, lda: t, b: vp, ldb: s.kvWidth, beta: 0, c: op + i0 * s.qWidth, ldc: s.qWidth)
            }
        }
    }
}

/// dq = ∂L/∂q (overwritten); dk, dv are overwritten too. `scratch` holds t·t values.
@_specialize(where T == Float)
func attentionBackward<T: Real>(
    _ dq: UnsafeMutablePointer<T>, _ dk: UnsafeMutablePointer<T>, _ dv: UnsafeMutablePointer<T>,
    _ dOut: UnsafePointer<T>, _ probs: UnsafePointer<T>,
    _ q: UnsafePointer<T>, _ k: UnsafePointer<T>, _ v: UnsafePointer<T>,
    _ scratch: UnsafeMutablePointer<T>, _ s: AttentionShape
) {
    let t = s.seqLen, scale = 1 / T(s.headDim).squareRoot(), blocks = s.blocks
    // One clear of the whole range: OpenBLAS clears C row by row when beta is 0.
    dk.update(repeating: 0, count: s.batch * t * s.kvWidth)
    dv.update(repeating: 0, count: s.batch * t * s.kvWidth)
    let beta: T = 1
    for b in 0..<s.batch {
        for h in 0..<s.heads {
            let kvh = h / s.group
            let qOff = b * t * s.qWidth + h * s.headDim, kvOff = b * t * s.kvWidth + kvh * s.headDim
            let p = probs + (b * s.heads + h) * t * t
            for qb in 0..<blocks.count {
                let i0 = qb * blocks.size, i1 = min(t, i0 + blocks.size)
                guard i0 < i1 else { break }
                let m = i1 - i0
                let pb = p + i0 * t, dO = dOut + qOff + i0 * s.qWidth
                // dV += Pᵀ dO; dP = dO Vᵀ
                T.gemm(
                    transA: true, transB: false, m: i1, n: s.headDim, k: m, alpha: 1,
                    a: pb, lda: t, b: dO, ldb: s.qWidth, beta: beta, c: dv + kvOff, ldc: s.kvWidth)
                T.gemm(
                    transA: false, transB: true, m: m, n: i1, k: s.headDim, alpha: 1,
                    a: dO, lda: s.qWidth, b: v + kvOff, ldb: s.kvWidth, beta: 0, c: scratch, ldc: t)
                // Softmax backward, in place: dS = P ⊙ (dP − rowsum(P ⊙ dP)).
                // P is an exact zero past the diagonal up to i1, so whole rows of the block give zeros there too.
                for i in i0..<i1 {
                    let pr = p + i * t, dr = scratch + (i - i0) * t
                    let rowDot = dot(pr, dr, i + 1)
                    softmaxBackwardRow(dr, pr, rowDot, i1)
                }
                // dQ = scale · dS K; dK += scale · dSᵀ Q
                T.gemm(
                    transA: false, transB: false, m: m, n: s.headDim, k: i1, alpha: scale,
                    a: scratch, lda: t, b: k + kvOff, ldb: s.kvWidth, beta: 0, c: dq + qOff + i0 * s.qWidth, ldc: s.qWidth)
                T.gemm(
                    transA: true, transB: false, m: i1, n: s.headDim, k: m, alpha: scale,
                    a: scratch, lda: t, b: q + qOff + i0 * s.qWidth, ldb: s.qWidth, beta: beta, c: dk + kvOff, ldc: s.kvWidth)
            }
        }
    }
}

// MARK: - SwiGLU: act = silu(gate) ⊙ up

/// With `sigmoid`, also keeps sigmoid(gate) there for the backward pass.
@_specialize(where T == Float)
func swigluForward<T: Real>(
    _ act: UnsafeMutablePointer<T>, _ gate: UnsafePointer<T>, _ up: UnsafePointer<T>, count n: Int,
    sigmoid: UnsafeMutablePointer<T>? = nil
) {
    var i = 0
    if let sigmoid {
        while i + 8 <= n {
            let g = load8(gate + i), sig = 1 / (1 + T.exp(-g))
            store8(sig, sigmoid + i)
            store8(g * sig * load8(up + i), act + i)
            i += 8
        }
    } else {
        while i + 8 <= n {
            let g = load8(gate + i)
            store8(g / (1 + T.exp(-g)) * load8(up + i), act + i)
            i += 8
        }
    }
    while i < n {
        let g = gate[i], sig = 1 / (1 + T.exp(-g))
        sigmoid?[i] = sig
        act[i] = g * sig * up[i]
        i += 1
    }
}

/// Overwrites dGate and dUp. With `sigmoid` (as kept by the forward pass) it is not computed again.
@_specialize(where T == Float)
func swigluBackward<T: Real>(
    _ dGate: UnsafeMutablePointer<T>, _ dUp: UnsafeMutablePointer<T>, _ dAct: UnsafePointer<T>,
    _ gate: UnsafePointer<T>, _ up: UnsafePointer<T>, count n: Int, sigmoid: UnsafePointer<T>? = nil
) {
    var i = 0
    while i + 8 <= n {
        let g = load8(gate + i), d = load8(dAct + i)
        let sig = sigmoid.map { load8($0 + i) } ?? 1 / (1 + T.exp(-g))
        store8(d * g * sig, dUp + i)
        store8(d * load8(up + i) * sig * (1 + g * (1 - sig)), dGate + i)
        i += 8
    }
    while i < n {
        let g = gate[i], sig = sigmoid?[i] ?? 1 / (1 + T.exp(-g))
        dUp[i] = dAct[i] * g * sig
        dGate[i] = dAct[i] * up[i] * sig * (1 + g * (1 - sig))
        i += 1
    }
}

// MARK: - Cross-entropy over next-token targets; -100 marks positions without a target (prompt, padding).

public let ignoreIndex: Int32 = -100

/// Returns the summed loss and the number of targets. When `gradScale` is given, the logits are replaced by
/// gradScale · (softmax − onehot), and rows without a target by zeros.
@_specialize(where T == Float)
func crossEntropy<T: Real>(
    _ logits: UnsafeMutablePointer<T>, targets: UnsafePointer<Int32>, rows n: Int, vocab: Int,
    gradScale: T?
) -> (sum: Double, count: Int) {
    var total = 0.0, count = 0
    for r in 0..<n {
        let row = logits + r * vocab
        let target = targets[r]
        guard target != ignoreIndex else {
            if gradScale != nil { row.update(repeating: 0, count: vocab) }
            continue
        }
        let m = maximum(row, vocab), targetLogit = row[Int(target)]
        if let g = gradScale {
            // One exp per logit: keep exp(l − m) in place, then scale by g / Σ.
            let sum = expShiftSum(row, vocab, shift: m)
            total += Double(m + T.log(sum) - targetLogit)
            multiply(row, by: g / sum, vocab)
            row[Int(target)] -= g
        } else {
            total += Double(m + T.log(expShiftSumOnly(row, vocab, shift: m)) - targetLogit)
        }
        count += 1
    }
    return (total, count)
}
