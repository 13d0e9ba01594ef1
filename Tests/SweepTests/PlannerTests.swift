import HarrowCore
import Testing
@testable import Sweep

@Suite struct PlannerTests {
    @Test func gridCountIsProductMinusExclusionsAndFilters() throws {
        let p = try plan(
            """
            parameters:
              epochs: {values: [1, 2, 3]}
              lr: {values: [1.0e-4, 3.0e-4]}
              base_model: [base, chat]
            exclude:
              - {epochs: 3, lr: 1.0e-4}
              - {base_model: base, epochs: [1, 2]}
            where: "lr > 1.0e-4 or epochs > 1"
            """)
        #expect(p.candidates == 12)
        #expect(p.excluded == 2 + 4)
        // Of the 6 left, where drops chat/epochs 1/lr 1e-4.
        #expect(p.filtered == 1)
        #expect(p.trials.count == 5)
        #expect(p.trials.allSatisfy { !($0.int("epochs") == 3 && $0.double("lr") == 1e-4) })
        #expect(p.trials.allSatisfy { $0.string("base_model") == "chat" || $0.int("epochs") == 3 })
    }

    @Test func tiedAndFreeAlphaShareAnAxisAndDuplicatesCollapse() throws {
        let p = try plan(
            """
            parameters:
              lora_r: {values: [4, 8, 16]}
              lora_alpha: {values: [{expr: "2 * lora_r"}, 16]}
            """)
        // r=8 tied gives alpha 16, the same trial as the free variant.
        #expect(p.candidates == 6 && p.duplicates == 1 && p.trials.count == 5)
        let pairs = p.trials.map { [$0.int("lora_r")!, $0.int("lora_alpha")!] }
        #expect(pairs == [[4, 8], [8, 16], [16, 32], [4, 16], [16, 16]])  // lora_alpha sorts first, so it varies slowest
    }

    @Test func derivedParametersChainInDependencyOrder() throws {
        let p = try plan(
            """
            parameters:
              a_scale: {expr: "lora_alpha / lora_r"}
              lora_alpha: {expr: "lora_r * mult"}
              lora_r: {values: [8, 16]}
              mult: {values: [1, 2]}
            """)
        #expect(p.trials.count == 4)
        for t in p.trials {
            #expect(t.int("lora_alpha") == t.int("lora_r")! * t.int("mult")!)
            #expect(t.double("a_scale") == Double(t.int("mult")!))
        }
    }

    @Test func runCapLimitsTheGrid() throws {
        let p = try plan("run_cap: 5\nparameters:\n  a: {values: [1, 2, 3]}\n  b: {values: [1, 2, 3]}\n")
        #expect(p.trials.count == 5)
        #expect(p.capped == 4)
        #expect(p.notes.contains { $0.contains("run_cap 5") })
    }

    @Test func keysAreStableAndContentBased() throws {
        let yaml = "parameters:\n  lr: {values: [0.001, 0.002]}\n  epochs: 3\n"
        let a = try plan(yaml), b = try plan("parameters:\n  epochs: {value: 3}\n  lr: [0.001, 0.002]\n")
        // Same parameters in another spelling and key order: the same trials.
        #expect(a.trials.map(\.key) == b.trials.map(\.key))
        #expect(a.trials[0].key.count == 64 && a.trials[0].key != a.trials[1].key)
        // An integral float is the same value as the integer (W&B hashes 3e6 and 3000000 alike).
        let c = try plan("parameters:\n  lr: {values: [0.001, 0.002]}\n  epochs: 3.0\n")
        #expect(c.trials.map(\.key) == a.trials.map(\.key))
        // The trainer command is part of the identity.
        let d = try plan(yaml + "trainer: {command: [python, train.py, \"{config}\"]}\n")
        #expect(Set(d.trials.map(\.key)).isDisjoint(with: a.trials.map(\.key)))
        // Pinned: a change to the canonical form would silently re-run every finished trial. The literals are the
        // SHA-256 of the canonical JSON written by hand (keys sorted, no spaces, integral floats as integers):
        //   printf '%s' '{"command":["harrow-train","sft","--config","{config}","--run-dir","{run_dir}"],"params":{"epochs":3,"lr":0.001}}' | sha256sum
        // and the same with "lr":0.002.
        #expect(
            a.trials.map(\.key) == [
                "30800ab796a3b5cb8b7b3348f0a6409d4dcf29dde7147ac6c723e5fb0092bb4b",
                "a9c391e60cfa5fc047968a2caaca61506a22f1e1989e275243066bc162e2f214"
            ])
    }

    @Test func randomRespectsConstraintsAndCount() throws {
        let p = try plan(
            """
            method: random
            count: 30
            seed: 3
            parameters:
              lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-2}
              lora_r: {values: [4, 8, 16, 32]}
              lora_alpha: {expr: "2 * lora_r"}
            where: "lr < 1.0e-3 or lora_r <= 8"
            """)
        #expect(p.trials.count == 30)
        #expect(p.filtered > 0)
        #expect(p.trials.allSatisfy { $0.double("lr")! < 1e-3 || $0.int("lora_r")! <= 8 })
        #expect(p.trials.allSatisfy { $0.int("lora_alpha") == 2 * $0.int("lora_r")! })
    }

    @Test func randomOverASmallSpaceStopsAndSaysSo() throws {
        let p = try plan("method: random\ncount: 10\nparameters:\n  a: [1, 2, 3]\n")
        #expect(p.trials.count == 3)
        #expect(p.notes.first?.contains("only 3 distinct trials of 10") == true)
    }

    @Test func samplersMatchTheirMoments() {
        var rng = SplitMix64(seed: 42)
        let n = 20_000
        func mean(_ d: Distribution) -> Double {
            (0..<n).reduce(0.0) { acc, _ in
                guard case .value(let v) = d.sample(&rng) else { return acc }
                return acc + v.number!
            } / Double(n)
        }
        #expect(abs(mean(.normal(mu: 2, sigma: 0.5)) - 2) < 0.02)
        #expect(abs(mean(.beta(a: 2, b: 5)) - 2.0 / 7) < 0.01)
        #expect(abs(mean(.beta(a: 0.5, b: 0.5)) - 0.5) < 0.01)
        #expect(abs(mean(.uniform(min: 1, max: 3)) - 2) < 0.02)
        #expect(abs(mean(.intUniform(min: 1, max: 6)) - 3.5) < 0.05)
        #expect(abs(mean(.logNormal(mu: 0, sigma: 0.5)) - 1.1331) < 0.02)
        // log_uniform_values: the median is the geometric mean of the bounds.
        var draws = (0..<n).map { _ -> Double in
            guard case .value(let v) = Distribution.logUniformValues(min: 1e-5, max: 1e-3).sample(&rng) else { return 0 }
            return v.number!
        }
        draws.sort()
        #expect(abs(draws[n / 2] / 1e-4 - 1) < 0.06)
        let weighted = Distribution.weightedCategorical([.string("a"), .string("b")], probabilities: [0.8, 0.2])
        let share =
            Double(
                (0..<n).filter { _ in
                    if case .value(.string("a")) = weighted.sample(&rng) { true } else { false }
                }.count) / Double(n)
        #expect(abs(share - 0.8) < 0.015)
    }

    @Test func quantisedGridValuesHaveNoBinaryNoise() {
        let choices = Distribution.qUniform(min: 0, max: 1, q: 0.1, integral: false).gridChoices!
        let values = choices.map { c -> Double in if case .value(let v) = c { v.number! } else { -1 } }
        #expect(values == [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    }

    @Test func parametersJSONIsFlatAndTyped() throws {
        let p = try plan(
            "parameters:\n  lora:\n    parameters:\n      r: 8\n      targets: [[q_proj, v_proj]]\n  name: \"run 1\"\n  full: false\n")
        #expect(p.trials[0].parametersJSON == #"{"full": false, "lora.r": 8, "lora.targets": ["q_proj", "v_proj"], "name": "run 1"}"#)
    }

    @Test func shippedExperimentsPlan() throws {
        for (file, expected) in [("demo.yaml", 11), ("overnight.yaml", 570)] {
            let path = #filePath.components(separatedBy: "/Tests/")[0] + "/experiments/" + file
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let p = try plan(text, file: path)
            #expect(p.trials.count == expected, "\(file)")
            #expect(p.experiment.warnings.isEmpty, "\(p.experiment.warnings)")
            // All six axes vary.
            for axis in ["epochs", "lr", "warmup_ratio", "lora_r", "lora_alpha", "base_model", "mix_ratio"] {
                #expect(p.varying.contains(axis), "\(file) does not vary \(axis)")
            }
        }
    }
}
