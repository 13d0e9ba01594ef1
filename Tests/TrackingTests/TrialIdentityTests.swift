import Foundation
import Testing
@testable import Tracking

@Suite struct TrialIdentityTests {
    let earlier = TrialIdentity(
        paramsKey: "p", commit: "a1b2c3d4e5", uncommitted: [:], programs: ["harrow-train": "1"],
        inputs: ["datasets/domain.jsonl": "x", "models/chat/model.safetensors": "w"])

    @Test func theKeyCoversEveryPart() {
        var changed = earlier
        #expect(changed.key == earlier.key)
        for edit in [
            { (i: inout TrialIdentity) in i.paramsKey = "q" }, { $0.commit = "f" }, { $0.uncommitted["t.py"] = "1" },
            { $0.programs["harrow-train"] = "2" }, { $0.inputs["datasets/domain.jsonl"] = "y" }
        ] {
            changed = earlier
            edit(&changed)
            #expect(changed.key != earlier.key)
        }
        #expect(TrialIdentity(json: earlier.json) == earlier)
    }

    @Test func changesAreNamedAsUsersReadThem() {
        var now = earlier
        now.commit = "d4e5f6a7b8"
        #expect(now.changes(since: earlier, committedFiles: ["train.py"]) == "code changed: commit a1b2c3d → d4e5f6a (train.py)")
        now.uncommitted = ["train.py": "1", "util.py": "2"]
        now.programs["harrow-train"] = "9"
        now.inputs["datasets/domain.jsonl"] = "y"
        #expect(
            now.changes(since: earlier, committedFiles: nil)
                == "code changed: commit a1b2c3d → d4e5f6a, uncommitted changes to train.py, util.py, program harrow-train; data changed: datasets/domain.jsonl"
        )
        var data = earlier
        data.inputs.removeValue(forKey: "models/chat/model.safetensors")
        #expect(data.changes(since: earlier) == "data changed: models/chat/model.safetensors")
        #expect(earlier.changes(since: nil) == "recorded before code and data were part of a trial's identity")
        // A program already named as a committed change is not named twice.
        var script = earlier
        script.commit = "ffffffff"
        script.programs["trainer.sh"] = "1"
        #expect(script.changes(since: earlier, committedFiles: ["trainer.sh"]) == "code changed: commit a1b2c3d → fffffff (trainer.sh)")
    }

    @Test func aTrialStandsOnTheRunMatchingItsRule() throws {
        let store = try temporaryStore()
        let v1 = TrialIdentity(paramsKey: "k", commit: "c1"), v2 = TrialIdentity(paramsKey: "k", commit: "c2")
        func register(_ identity: TrialIdentity, reuse: ReuseRule = .identity, sweep: String = "s") throws -> Registration {
            try store.register(
                sweep: sweep, file: "s.yaml", method: "grid", spec: "",
                trials: [TrialRecord(identity: identity, paramsJSON: "{}", command: ["t"])],
                runsRoot: "/tmp/runs", reuse: reuse)
        }
        let first = try register(v1)
        #expect(first.reruns.isEmpty)
        _ = try store.claim(run: first.runs[0].rowID, from: [.queued], owner: Owner())
        try store.finish(run: first.runs[0].rowID, attempt: 1, status: .succeeded, exitCode: 0, signal: nil, stderrTail: nil)
        #expect(try register(v1).runs.map(\.id) == first.runs.map(\.id))
        // The params rule keeps the finished run; the identity rule makes a new one, linked to it.
        #expect(try register(v2, reuse: .params).runs.map(\.id) == first.runs.map(\.id))
        let second = try register(v2)
        #expect(second.runs[0].id != first.runs[0].id && second.runs[0].earlierRunID == first.runs[0].id)
        #expect(second.reruns.map(\.earlier) == [first.runs[0].id] && second.reruns[0].earlierIdentity == v1)
        #expect(try store.runs().count == 2)
        // Another sweep with the same identity stands on the same run, which stays the first sweep's.
        let other = try register(v1, sweep: "t")
        #expect(other.runs.map(\.id) == first.runs.map(\.id) && other.runs[0].sweepName == "s")
        #expect(try store.sweeps().first { $0.name == "t" }?.reused == 1)
    }
}
