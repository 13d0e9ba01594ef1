import Foundation
import Testing
@testable import Sweep

/// 35 W&B sweep files from public repositories (Fixtures/wandb-public/README.md names each one's source): each plans
/// as W&B runs it, or is refused where W&B refuses it.
@Suite struct WandbPublicFilesTests {
    static let folder = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/wandb-public")
    static let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()

    func load(_ name: String) throws -> Result<Plan, ExperimentError> {
        let url = Self.folder.appendingPathComponent(name)
        let text = try String(contentsOf: url, encoding: .utf8)
        do { return .success(try Planner.plan(Experiment.parse(yaml: text, file: url.path))) } catch let e as ExperimentError {
            return .failure(e)
        }
    }

    @Test func theCorpusIsThere() {
        #expect(Self.files.count == 35)
    }

    @Test(arguments: files) func plansAsWandbRunsIt(_ name: String) throws {
        let result = try load(name)
        // W&B's schema refuses `values: 3` (param_categorical.values is an array): so does Harrow, at the value.
        if name == "alekseykorshuk-dalio-finetuner-sweep.yaml" {
            guard case .failure(let e) = result else { Issue.record("\(name) planned; W&B refuses it"); return }
            #expect(e.diagnostics.contains { $0.location.line == 38 && $0.message.contains("`values` must be a list") })
            return
        }
        guard case .success(let plan) = result else {
            if case .failure(let e) = result { Issue.record("\(name): \(e.diagnostics.map(\.message))") }
            return
        }
        let e = plan.experiment
        switch e.method {
        case .grid:
            #expect(!plan.trials.isEmpty)
        case .random, .bayes, .tpe:
            // Without `count` or `run_cap` W&B runs them until stopped: no trials are planned up front.
            if e.count == nil, e.runCap == nil { #expect(plan.trials.isEmpty && Planner.limit(e) == nil) }
        }
    }

    @Test func gridSizesAreTheCartesianProducts() throws {
        let sizes = try Self.files.compactMap { name -> (String, Int)? in
            guard case .success(let p) = try load(name), p.experiment.method == .grid else { return nil }
            return (name, p.trials.count)
        }
        let byName = Dictionary(uniqueKeysWithValues: sizes)
        #expect(byName["wandb-examples-pytorch-grid-hyperband.yaml"] == 540)
        #expect(byName["wandb-sweeps-nested-cli.yaml"] == 8)
        #expect(sizes.map(\.1).sorted() == [2, 8, 8, 12, 15, 27, 27, 540])
    }

    @Test func deprecatedLogUniformIsSampledWithAWarning() throws {
        for name in [
            "wandb-examples-fastai-simpsons.yaml", "dhruvdcoder-wandb-allennlp-nli-lstm.yaml", "milescranmer-pysr-wandb-sweep.yaml"
        ] {
            guard case .success(let p) = try load(name) else { Issue.record("\(name) refused"); continue }
            #expect(p.experiment.warnings.contains { $0.message.contains("'log_uniform' is deprecated") }, "\(name)")
        }
    }

    @Test func exponentsPyYamlReadsAsStringsAreWarnedAbout() throws {
        // W&B loads sweep files with PyYAML (YAML 1.1): `1e-6` is the string "1e-6" there, and its schema check fails.
        for name in [
            "johnfoley14-fine-tune-whisper-sweep-lora.yaml", "brandsma-semif-conlang-lora-sweep.yaml",
            "erland366-transformers-playground-sweep-config.yaml"
        ] {
            guard case .success(let p) = try load(name) else { Issue.record("\(name) refused"); continue }
            #expect(p.experiment.warnings.contains { $0.message.contains("a string to `wandb sweep`") }, "\(name)")
        }
        guard case .success(let clean) = try load("wandb-sweeps-sweep-bayes.yaml") else { Issue.record("refused"); return }
        #expect(!clean.experiment.warnings.contains { $0.message.contains("a string to `wandb sweep`") })
    }
}
