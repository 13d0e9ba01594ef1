import Foundation
import HarrowCore
import Tracking

/// docs/DESIGN.md's run summary JSON, shared by `harrow runs --json` and `harrow show --json`.
enum RunSummary {
    static func json(_ run: Run, store: Store) throws -> [String: Any] { json(try store.snapshot(run)) }

    static func json(_ snapshot: RunSnapshot) -> [String: Any] {
        let run = snapshot.run
        var metrics: [String: Any] = [:]
        for (key, s) in snapshot.summaries {
            metrics[key] = ["last": s.last, "min": s.min, "min_step": s.minStep, "max": s.max, "count": s.count, "last_step": s.lastStep]
        }
        var git: Any = NSNull()
        if let p = snapshot.provenance {
            git = ["commit": p.commit ?? NSNull(), "branch": p.branch ?? NSNull(), "dirty": p.dirty,
                   "diff_sha256": p.diffSHA256 ?? NSNull(), "untracked": p.untracked, "note": p.note ?? NSNull()] as [String: Any]
        }
        var verdict: Any = NSNull()
        if let d = snapshot.diagnosis {
            // The run's best step by the one rule (a diagnosis stored before it may name a smoothed step).
            verdict = ["verdict": d.verdict, "confidence": d.confidence, "best_step": snapshot.bestStep ?? d.bestStep ?? NSNull(),
                       "advice": d.advice] as [String: Any]
        }
        let named = scores(snapshot)
        let scores: Any = named.isEmpty ? NSNull() : named.mapValues(\.value)
        return [
            "scores": scores,
            "verdict": verdict,
            "id": run.id, "sweep": run.sweepName ?? NSNull(), "trial_key": run.trialKey, "status": run.status.rawValue,
            "attempt": run.attempt, "params": run.params.mapValues(\.jsonObject), "started_at": isoDate(run.startedAt), "ended_at": isoDate(run.endedAt),
            "exit_code": run.exitCode.map { Int($0) } ?? NSNull(), "signal": run.signal.map { Int($0) } ?? NSNull(),
            "git": git, "metrics": metrics, "source": run.source, "run_dir": run.runDir ?? NSNull(),
            "duration_s": run.duration ?? NSNull(), "params_key": run.paramsKey ?? NSNull(),
            "earlier_run": run.earlierRunID ?? NSNull(),
            "failure": run.failure.map { ["cause": $0.cause.rawValue, "label": $0.cause.label, "lines": $0.lines] as [String: Any] } ?? NSNull(),
            "job": run.job ?? NSNull(), "executor": run.executor ?? NSNull(),
            "identity": run.identity.map { ["commit": $0.commit ?? NSNull(), "uncommitted": $0.uncommitted, "programs": $0.programs,
                                            "inputs": $0.inputs] as [String: Any] } ?? NSNull(),
        ]
    }

    /// Scores: the run's named values but for losses and per-task_type groups (`show` prints the same).
    static func scores(_ snapshot: RunSnapshot) -> [String: RunValue] {
        snapshot.values.filter { (!$0.key.contains("/") || $0.key.hasPrefix("gain/")) && !$0.key.hasPrefix("val_loss") }
    }
}

/// Runs that did not finish, counted by cause: `2 out of memory (GPU), 1 crashed at start`; nil when every run
/// finished.
enum FailureCounts {
    static func counts(_ runs: [Run]) -> [(cause: FailureCause, count: Int)] {
        var counts: [FailureCause: Int] = [:]
        for r in runs { if let f = r.failure { counts[f.cause, default: 0] += 1 } }
        return FailureCause.allCases.compactMap { c in counts[c].map { (c, $0) } }
    }

    static func text(_ runs: [Run]) -> String? {
        let c = counts(runs)
        return c.isEmpty ? nil : c.map { "\($0.count) \($0.cause.label)" }.joined(separator: ", ")
    }
}
