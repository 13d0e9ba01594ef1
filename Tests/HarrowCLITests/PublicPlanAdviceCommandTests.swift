import Foundation
import Testing

/// `harrow plan`'s advice on LLaMA-Factory's example configs with the data they name: harrow reads the config, finds
/// each dataset in `dataset_dir`'s dataset_info.json (default `data`, where harrow runs, as LLaMA-Factory does) and
/// counts the file it names. The layout is LLaMA-Factory's repository: examples/ (Tests/SweepTests/Fixtures/
/// llamafactory-examples) and data/ (Tests/EvaluationTests/Fixtures/public-data: its dataset_info.json, identity.json's
/// 91 records, the first 100 of alpaca_en_demo.json).
@Suite struct PublicPlanAdviceCommandTests {
    static let examples = Harrow.packageRoot + "/Tests/SweepTests/Fixtures/llamafactory-examples"
    static let data = Harrow.packageRoot + "/Tests/EvaluationTests/Fixtures/public-data"

    /// A folder laid out as LLaMA-Factory's repository, with or without its data/.
    static func layout(data withData: Bool = true) throws -> String {
        let dir = try Harrow.temporaryDirectory()
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: examples) {
            try fm.copyItem(atPath: examples + "/" + name, toPath: dir + "/" + name)
        }
        if withData {
            try fm.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
            for name in ["dataset_info.json", "identity.json", "alpaca_en_demo.json"] {
                try fm.copyItem(atPath: data + "/" + name, toPath: dir + "/data/" + name)
            }
        }
        return dir
    }

    static func advice(_ stdout: String) -> [String] { stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("advice: ") } }

    /// 91 + 100 records: the rule gives ~14 epochs (15 − 5 × log10(1.91)), and the config's 3 are 0.22× that.
    @Test func theConfigAndItsDataAreRead() throws {
        let dir = try Self.layout()
        let r = try Harrow.run(["plan", "qwen3-lora-sft.yaml"], in: dir, environment: ["COLUMNS": "1000"])
        #expect(r.status == 0)
        #expect(
            Self.advice(r.stdout) == [
                "advice: num_train_epochs 3.0 (examples/train_lora/qwen3_lora_sft.yaml) for 191 training records (identity 91 + alpaca_en_demo 100) "
                    + "is 0.22× the ~14 the rule gives: expect it to end under-trained (2 of 2 trials: #1, #2)",
                "advice: lr 0.01 is far above LoRA's usual 1e-5 … 1e-3: expect unstable or diverging loss (lower it about 10×) (trial #2)"
            ])
        // The same names, checked as the sweep will check them: identity.json's answers are one template with a
        // `{{name}}` to fill, so they repeat (4 exactly, 3 pairs nearly).
        let data = r.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("data: ") }
        #expect(
            data == [
                "data: data/identity.json (dataset): 91 records, 14–90 tokens (UTF-8 bytes / 4, an estimate), 7 warnings",
                "data: data/alpaca_en_demo.json (dataset): 100 records, 13–631 tokens (UTF-8 bytes / 4, an estimate)"
            ])
        let json = try Harrow.run(["plan", "qwen3-lora-sft.yaml", "--json"], in: dir)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let first = try #require((object["advice"] as? [[String: Any]])?.first)
        #expect(first["rule"] as? String == "epochs")
        let values = try #require(first["values"] as? [String: Any])
        #expect(values["num_train_epochs"] as? Double == 3 && values["records"] as? Int == 191)
    }

    /// Data harrow cannot count leaves the data-size rule silent: no data/ folder, or a dataset_info.json entry on a
    /// hub (`alpaca_en` is `hf_hub_url: llamafactory/alpaca_en`).
    @Test func uncountedDataSaysNothing() throws {
        let lr = "advice: lr 0.01 is far above LoRA's usual 1e-5 … 1e-3: expect unstable or diverging loss (lower it about 10×) (trial #2)"
        let bare = try Harrow.run(["plan", "qwen3-lora-sft.yaml"], in: try Self.layout(data: false), environment: ["COLUMNS": "1000"])
        #expect(bare.status == 0 && Self.advice(bare.stdout) == [lr])
        let dir = try Self.layout()
        let text = try String(contentsOfFile: dir + "/qwen3-lora-sft.yaml", encoding: .utf8)
        try text.replacingOccurrences(of: "parameters:\n", with: "parameters:\n  dataset: {value: \"identity,alpaca_en\"}\n")
            .write(toFile: dir + "/hub.yaml", atomically: true, encoding: .utf8)
        let hub = try Harrow.run(["plan", "hub.yaml"], in: dir, environment: ["COLUMNS": "1000"])
        #expect(hub.status == 0 && Self.advice(hub.stdout) == [lr])
    }

    /// The shipped LLaMA-Factory check (`make check-trainers`) names harrow_domain in experiments/check/data, whose
    /// dataset_info.json points at datasets/domain/train.jsonl: 95 records, cut to its max_samples 64.
    @Test func theShippedLlamaFactoryCheck() throws {
        let r = try Harrow.run(["plan", "experiments/check/llamafactory.yaml"], in: Harrow.packageRoot, environment: ["COLUMNS": "1000"])
        #expect(r.status == 0)
        #expect(
            Self.advice(r.stdout) == [
                "advice: epochs 3 for 64 training records (harrow_domain 64 of 95 by max_samples 64) is 0.2× the ~15 the rule gives: "
                    + "expect it to end under-trained (2 of 2 trials: #1, #2)"
            ])
    }
}
