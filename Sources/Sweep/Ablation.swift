/// A one-factor-at-a-time reading of a set of trials, as an ablation table reads: the baseline is the trial
/// that holds the most common value of every parameter, and every other trial is read as the parameters it
/// changes from it. Pure: values are compared as given (the caller makes equal values equal).
public enum Ablation {
    public struct Change: Sendable, Equatable {
        public var name: String
        public var from: String
        public var to: String
    }

    public struct Reading: Sendable, Equatable {
        /// Index of the baseline trial.
        public var baseline: Int
        /// For each trial, in the order given, what it changes from the baseline (empty for the baseline and for
        /// trials identical to it).
        public var changes: [[Change]]

        /// Trials ordered for reading: the baseline first, then its repeats, then by the parameter changed (sorted
        /// by name) and, within one parameter, in the order given; trials changing several parameters come last.
        public var order: [Int] {
            changes.indices.sorted { a, b in
                func rank(_ i: Int) -> (Int, String) {
                    if i == baseline { return (0, "") }
                    switch changes[i].count {
                    case 0: return (1, "")
                    case 1: return (2, changes[i][0].name)
                    default: return (3, "")
                    }
                }
                let (ra, rb) = (rank(a), rank(b))
                return ra != rb ? ra < rb : a < b
            }
        }
    }

    /// Reads trials given as parameter name → value text. Nil when there are no trials.
    public static func read(_ trials: [[String: String]]) -> Reading? {
        guard !trials.isEmpty else { return nil }
        let names = Set(trials.flatMap(\.keys)).sorted()
        // The modal value of each parameter; ties go to the value seen first.
        var modal: [String: String?] = [:]
        for name in names {
            var counts: [String?: Int] = [:], firstSeen: [String?] = []
            for t in trials {
                let v = t[name]
                if counts[v] == nil { firstSeen.append(v) }
                counts[v, default: 0] += 1
            }
            var best = firstSeen[0]
            for v in firstSeen where counts[v]! > counts[best]! { best = v }
            modal[name] = best
        }
        func distance(_ t: [String: String]) -> Int { names.filter { t[$0] != modal[$0]! }.count }
        let baseline = trials.indices.min { distance(trials[$0]) < distance(trials[$1]) }!
        let base = trials[baseline]
        let changes = trials.map { t in
            names.compactMap { n -> Change? in
                t[n] == base[n] ? nil : Change(name: n, from: base[n] ?? "-", to: t[n] ?? "-")
            }
        }
        return Reading(baseline: baseline, changes: changes)
    }

    /// The reading when the trials are a one-change-at-a-time design (`experiments/demo.yaml`): every trial changes
    /// at most two parameters from the baseline (a tied pair such as lora_r and lora_alpha = 2·r counts as one
    /// change), and there are no more trials than the baseline plus one per other value of each parameter, which a
    /// grid over two or more parameters always exceeds. Nil for any other design.
    public static func oneAtATime(_ trials: [[String: String]]) -> Reading? {
        guard trials.count >= 3, let r = read(trials) else { return nil }
        let names = Set(trials.flatMap(\.keys))
        let otherValues = names.reduce(0) { n, name in n + Set(trials.map { $0[name] }).count - 1 }
        guard trials.count <= 1 + otherValues, r.changes.allSatisfy({ $0.count <= 2 }),
            r.changes.filter({ $0.count == 1 }).count * 2 >= trials.count - 1
        else { return nil }
        return r
    }
}
