import Foundation
import Testing

/// `method: bayes` and `early_terminate: hyperband` through `harrow sweep`, with `harrow-train objective` as the
/// trainer subprocess (the search benchmark's curve, written as metrics lines while it runs).
@Suite(.serialized) struct AdaptiveSearchTests {
    func folder(_ experiment: String) throws -> String {
        let dir = try Harrow.temporaryDirectory()
        try experiment.write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    func bayes(count: Int, parallel: Int, seconds: Double = 0.1) -> String {
        """
        name: search
        method: bayes
        metric: {name: val/loss, goal: minimize}
        count: \(count)
        seed: 3
        parameters:
          base_model: {values: [base, chat]}
          lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-2}
          lora_r: {distribution: int_uniform, min: 4, max: 64}
          epochs: {distribution: int_uniform, min: 1, max: 3}
        resources: {parallel: \(parallel)}
        trainer: {command: [harrow-train, objective, --config, "{config}", --seconds-per-epoch, "\(seconds)"]}
        """
    }

    func runs(_ dir: String) throws -> [[String: Any]] {
        let out = try Harrow.run("runs", "--json", in: dir)
        return try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
    }

    func proposal(_ dir: String, _ id: String) throws -> [String: Any]? {
        let show = try Harrow.run("show", id, "--json", in: dir)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        return object["proposal"] as? [String: Any]
    }

    @Test func aBayesSweepProposesAsSlotsFreeExplainsEachTrialAndResumesTheSameSearch() throws {
        let dir = try folder(bayes(count: 6, parallel: 2))
        let first = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        let six = try runs(dir)
        #expect(six.count == 6)
        #expect(six.allSatisfy { $0["status"] as? String == "succeeded" })
        var numbers: [Int] = []
        for run in six {
            let p = try #require(try proposal(dir, run["id"] as! String))
            numbers.append(p["number"] as! Int)
            #expect(p["method"] as? String == "bayes")
        }
        #expect(numbers.sorted() == [1, 2, 3, 4, 5, 6])
        // The GP took over once two results were in; its proposals say what it expected.
        let modelled = try six.compactMap { try proposal(dir, $0["id"] as! String) }.filter { $0["basis"] as? String == "gp" }
        #expect(!modelled.isEmpty)
        #expect(modelled.allSatisfy { $0["expected_improvement"] is Double && $0["predicted"] is Double })
        let text = try Harrow.run("show", six.last!["id"] as! String, in: dir).stdout
        #expect(text.contains("proposed   bayes #"), "\(text)")

        // A larger count continues the same search: the six stay, two more are proposed after them.
        try bayes(count: 8, parallel: 2).write(toFile: dir + "/exp.yaml", atomically: true, encoding: .utf8)
        let second = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(second.status == 0, "\(second.stderr)")
        let eight = try runs(dir)
        #expect(eight.count == 8)
        let before = Set(six.map { $0["id"] as! String })
        #expect(before.isSubset(of: Set(eight.map { $0["id"] as! String })))
        let added = try eight.filter { !before.contains($0["id"] as! String) }.map {
            try proposal(dir, $0["id"] as! String)?["number"] as? Int
        }
        #expect(added.compactMap { $0 }.sorted() == [7, 8])
    }

    /// One slot at a time, a bayes search is a function of its seed: two stores, the same trials in the same order.
    @Test func oneAtATimeTheSearchIsReproducibleFromItsSeed() throws {
        var sequences: [[String]] = []
        for _ in 0..<2 {
            let dir = try folder(bayes(count: 4, parallel: 1, seconds: 0))
            let r = try Harrow.run("sweep", "exp.yaml", in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            let numbered = try runs(dir).map { run in
                (try proposal(dir, run["id"] as! String)?["number"] as? Int ?? 0, run["id"] as! String)
            }
            sequences.append(numbered.sorted { $0.0 < $1.0 }.map(\.1))
        }
        #expect(sequences[0].count == 4)
        #expect(sequences[0] == sequences[1])
    }

    /// Hyperband over a grid whose good trials run first: the bad ones are stopped at a band, with the reason shown,
    /// and the best run is the one a full grid finds.
    @Test func hyperbandStopsTrialsBehindTheTopThirdAndKeepsTheBest() throws {
        let dir = try folder(
            """
            name: hb
            method: grid
            metric: {name: val/loss, goal: minimize}
            parameters:
              base_model: {value: chat}
              epochs: {value: 6}
              lora_r: {value: 16}
              lr: {values: [8.0e-4, 3.0e-4, 3.0e-5, 1.0e-5, 2.0e-5, 1.5e-5]}
            early_terminate: {type: hyperband, min_iter: 4, eta: 3}
            resources: {parallel: 2}
            trainer: {command: [harrow-train, objective, --config, "{config}", --seconds-per-epoch, "0.25"]}
            """)
        let r = try Harrow.run("sweep", "exp.yaml", in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let all = try runs(dir)
        #expect(all.count == 6)
        let stopped = all.filter { $0["status"] as? String == "stopped_early" }
        #expect(stopped.count >= 2, "statuses: \(all.map { $0["status"] as? String ?? "?" })")
        for run in stopped {
            let text = try Harrow.run("show", run["id"] as! String, in: dir).stdout
            #expect(text.contains("stopped    hyperband: val/loss"), "\(text)")
        }
        // The best trial (lr 8e-4 on chat) ran to the end.
        let sorted = try Harrow.run("runs", "--sort", "val/loss", "--json", in: dir)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(sorted.stdout.utf8)) as? [[String: Any]])
        let params = try #require(list.first?["params"] as? [String: Any])
        #expect(params["lr"] as? Double == 8e-4)
        #expect(list.first?["status"] as? String == "succeeded")
    }
}
