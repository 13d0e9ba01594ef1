import Foundation

/// Slurm's time limits (sbatch `--time`): `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`; `0`, `infinite` and
/// `unlimited` mean no limit (nil minutes from `limitMinutes`).
public enum SlurmTime {
    /// Minutes in a valid time limit (0 for no limit), nil when the text is not one.
    public static func minutes(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "infinite" || t == "unlimited" { return 0 }
        var days = 0.0
        var rest = Substring(t)
        if let dash = t.firstIndex(of: "-") {
            guard let d = Double(t[..<dash]), d >= 0 else { return nil }
            days = d
            rest = t[t.index(after: dash)...]
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map { Double($0) }
        guard !parts.isEmpty, parts.count <= 3, parts.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        let p = parts.map { $0! }
        if t.contains("-") {
            // D-H, D-H:M, D-H:M:S
            let h = p[0], m = p.count > 1 ? p[1] : 0, s = p.count > 2 ? p[2] : 0
            return days * 1440 + h * 60 + m + s / 60
        }
        switch p.count {
        case 1: return p[0]
        case 2: return p[0] + p[1] / 60
        default: return p[0] * 60 + p[1] + p[2] / 60
        }
    }

    /// sbatch's `--time` for a timeout in seconds: whole minutes, rounded up.
    public static func limit(seconds: Double) -> String {
        String(max(1, Int((seconds / 60).rounded(.up))))
    }
}
