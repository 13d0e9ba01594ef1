import Foundation
import Sweep

/// Cards handed out by memory: a trial takes the cards it asks for, each with its estimated bytes free, and gives
/// them back when its run ends. Trials wait for room rather than share a card past its memory.
actor GPUPool {
    /// Bytes a trial may use of a card: the card less a tenth, for fragmentation and what the estimate misses.
    static let usableShare = MemoryEstimate.cardUsableShare

    let usable: Int
    private var free: [Int: Int]
    private let order: [Int]

    init(ids: [Int], bytesPerCard: Int) {
        usable = Int(Double(bytesPerCard) * Self.usableShare)
        order = ids
        free = Dictionary(uniqueKeysWithValues: ids.map { ($0, Int(Double(bytesPerCard) * Self.usableShare)) })
    }

    /// `count` cards that each have `need` bytes free, the fullest first (so trials pack onto cards already in use
    /// and whole cards stay free for large ones); nil when there are not enough. Pure.
    static func choose(_ free: [Int: Int], order: [Int], need: Int, count: Int) -> [Int]? {
        let fitting = order.filter { (free[$0] ?? 0) >= need }.sorted {
            (free[$0]!, order.firstIndex(of: $0)!) < (free[$1]!, order.firstIndex(of: $1)!)
        }
        return fitting.count >= count ? Array(fitting.prefix(count)).sorted { order.firstIndex(of: $0)! < order.firstIndex(of: $1)! } : nil
    }

    func acquire(need: Int, count: Int) async -> [Int] {
        while true {
            if let ids = Self.choose(free, order: order, need: need, count: count) {
                for id in ids { free[id]! -= need }
                return ids
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    func release(_ ids: [Int], need: Int) {
        for id in ids { free[id]! += need }
    }
}
