import Foundation
import Testing

/// `harrow next` on a real sweep: `harrow-train objective` (the search benchmark's deterministic curve) as the
/// trainer, so the comparison of the two nights' best runs is exact, not a draw of noise.
@Suite(.serialized) struct NextCommandTests {
    static let night = """
        name: night
        method: grid
        metric: {name: val/loss, goal: minimize}
        parameters:
          base_model: {values: [base, chat]}
          lr: {values: [1.0e-4, 3.0e-4, 1.0e-3]}
          lora_r: {values: [8, 32]}
          epochs: {values: [2, 4]}
          mix_ratio: {values: [0.0, 0.2]}   # the objective ignores it
        resources: {parallel: 2}
        trainer: {command: [harrow-train, objective, --config, "{config}"]}
        """

    func best(_ sweep: String, in dir: String) throws -> Double {
        let out = try Harrow.run("runs", "--sweep", sweep, "--sort", "val/loss", "--limit", "1", "--json", in: dir)
        let runs = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
        let metrics = try #require(runs.first?["metrics"] as? [String: Any])
        return try #require((metrics["val/loss"] as? [String: Any])?["min"] as? Double)
    }

    @Test func theNextNightIsSmallerPlansAndItsBestRunIsAtLeastAsGood() throws {
        let dir = try Harrow.temporaryDirectory()
        try Self.night.write(toFile: dir + "/night.yaml", atomically: true, encoding: .utf8)
        let first = try Harrow.run("sweep", "night.yaml", in: dir)
        #expect(first.status == 0, "\(first.stderr)")

        let next = try Harrow.run("next", "--sweep", "night", "-o", "next.yaml", in: dir)
        #expect(next.status == 0, "\(next.stderr)")
        let text = try String(contentsOfFile: dir + "/next.yaml", encoding: .utf8)
        #expect(text.hasPrefix("# Written by `harrow next` from sweep 'night'."))
        #expect(text.contains("name: \"night-next\""))
        #expect(text.contains("  # next: kept as searched: mix_ratio trades val/loss against forgetting"))
        #expect(text.contains("  mix_ratio: {values: [0.0, 0.2]}   # the objective ignores it"))
        #expect(next.stderr.contains("next.yaml plans"), "\(next.stderr)")

        let plan = try Harrow.run("plan", "next.yaml", "--json", in: dir)
        #expect(plan.status == 0, "\(plan.stderr)")
        let planned = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        let count = try #require(planned["count"] as? Int)
        #expect(count < 48, "the next night is smaller than the 48-trial grid")

        let second = try Harrow.run("sweep", "next.yaml", in: dir)
        #expect(second.status == 0, "\(second.stderr)")
        // Deterministic trainer: the narrowed night keeps (or passes) the best point of the first.
        let before = try best("night", in: dir), after = try best("night-next", in: dir)
        #expect(after <= before, "best val/loss \(after) after, \(before) before")

        // --json says what changed, and an existing file is not replaced without --force.
        let json = try Harrow.run("next", "--sweep", "night", "--json", in: dir)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let changes = try #require(object["changes"] as? [[String: Any]])
        #expect(changes.contains { $0["parameter"] as? String == "mix_ratio" && $0["spec"] is NSNull })
        #expect(object["trials_before"] as? String == "48")
        let again = try Harrow.run("next", "--sweep", "night", "-o", "next.yaml", in: dir)
        #expect(again.status == 2)
        #expect(again.stderr.contains("next.yaml exists; give --force to replace it"))
    }

    @Test func anUnknownSweepIsAUsageError() throws {
        let dir = try Harrow.temporaryDirectory()
        try Self.night.replacingOccurrences(of: "lr: {values: [1.0e-4, 3.0e-4, 1.0e-3]}", with: "lr: {value: 1.0e-3}")
            .replacingOccurrences(of: "base_model: {values: [base, chat]}", with: "base_model: {value: chat}")
            .write(toFile: dir + "/night.yaml", atomically: true, encoding: .utf8)
        #expect(try Harrow.run("sweep", "night.yaml", in: dir).status == 0)
        let typo = try Harrow.run("next", "--sweep", "nigth", in: dir)
        #expect(typo.status == 2)
        #expect(typo.stderr.contains("no sweep 'nigth'") && typo.stderr.contains("did you mean 'night'?"), "\(typo.stderr)")
    }
}
