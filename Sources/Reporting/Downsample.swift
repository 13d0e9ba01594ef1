/// Largest-triangle-three-buckets (Steinarsson 2013): keeps the first and last points and, from each bucket
/// between, the point forming the largest triangle with the previous kept point and the next bucket's mean,
/// so peaks and turns survive thinning. Drawing only; the store keeps every point.
public enum Downsample {
    /// Indices of the points to keep, ascending; all of them when there are no more than `threshold`.
    public static func lttb(x: [Double], y: [Double], threshold: Int) -> [Int] {
        let n = min(x.count, y.count)
        guard threshold >= 3, n > threshold else { return Array(0..<n) }
        var kept = [0]
        kept.reserveCapacity(threshold)
        let every = Double(n - 2) / Double(threshold - 2)
        var a = 0
        for i in 0..<(threshold - 2) {
            // The next bucket's mean is the triangle's third corner.
            let nextStart = Int(Double(i + 1) * every) + 1
            let nextEnd = min(Int(Double(i + 2) * every) + 1, n)
            var meanX = 0.0, meanY = 0.0
            for j in nextStart..<nextEnd {
                meanX += x[j]
                meanY += y[j]
            }
            let count = Double(nextEnd - nextStart)
            meanX /= count
            meanY /= count
            let start = Int(Double(i) * every) + 1, end = Int(Double(i + 1) * every) + 1
            var best = start, bestArea = -1.0
            for j in start..<end {
                let area = abs((x[a] - meanX) * (y[j] - y[a]) - (x[a] - x[j]) * (meanY - y[a]))
                if area > bestArea {
                    bestArea = area
                    best = j
                }
            }
            kept.append(best)
            a = best
        }
        kept.append(n - 1)
        return kept
    }
}
