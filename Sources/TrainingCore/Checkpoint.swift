import Foundation

/// Model and adapter folders in the layouts transformers (`LlamaForCausalLM`) and PEFT (`PeftModel`) load.
public enum Checkpoint {
    public static let modelFile = "model.safetensors"
    public static let configFile = "config.json"
    public static let adapterFile = "adapter_model.safetensors"
    public static let adapterConfigFile = "adapter_config.json"

    // MARK: config.json

    /// The fields transformers 5 writes for a Llama model (`rope_parameters`, not the top-level `rope_theta` of 4.x).
    public static func configJSON(_ c: LlamaConfig) -> [String: Any] {
        [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "attention_bias": false, "attention_dropout": 0.0, "mlp_bias": false, "hidden_act": "silu",
            "bos_token_id": Int(Tokenizer.bos), "eos_token_id": Int(Tokenizer.eos), "pad_token_id": NSNull(),
            "dtype": "float32", "head_dim": c.head_dim, "hidden_size": c.hidden_size,
            "initializer_range": 0.02, "intermediate_size": c.intermediate_size,
            "max_position_embeddings": c.max_position_embeddings, "num_attention_heads": c.num_attention_heads,
            "num_hidden_layers": c.num_hidden_layers, "num_key_value_heads": c.num_key_value_heads,
            "pretraining_tp": 1, "rms_norm_eps": c.rms_norm_eps,
            "rope_parameters": ["rope_theta": c.rope_theta, "rope_type": "default"],
            "tie_word_embeddings": c.tie_word_embeddings, "use_cache": true, "vocab_size": c.vocab_size
        ]
    }

    /// Reads either the transformers 5 (`rope_parameters`) or 4.x (top-level `rope_theta`) form, with
    /// transformers' defaults for absent fields.
    public static func readConfig(_ dir: URL) throws -> LlamaConfig {
        let url = dir.appendingPathComponent(configFile)
        guard let data = FileManager.default.contents(atPath: url.path),
            let j = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { throw TrainingError.file("cannot read \(url.path)") }
        func int(_ k: String) throws -> Int {
            guard let v = j[k] as? Int else { throw TrainingError.file("\(url.path): \"\(k)\" must be an integer") }
            return v
        }
        if let type = j["model_type"] as? String, type != "llama" {
            throw TrainingError.file("\(url.path): model_type is \(type), not llama")
        }
        let rope = j["rope_parameters"] as? [String: Any] ?? j["rope_scaling"] as? [String: Any]
        if let kind = rope?["rope_type"] as? String ?? rope?["type"] as? String, kind != "default" {
            throw TrainingError.file("\(url.path): rope_type \(kind) is not supported, only default")
        }
        let heads = try int("num_attention_heads"), hidden = try int("hidden_size")
        if let hd = j["head_dim"] as? Int, hd != hidden / heads {
            throw TrainingError.file("\(url.path): head_dim \(hd) differs from hidden_size / num_attention_heads")
        }
        let c = LlamaConfig(
            vocab_size: try int("vocab_size"), hidden_size: hidden, intermediate_size: try int("intermediate_size"),
            num_hidden_layers: try int("num_hidden_layers"), num_attention_heads: heads,
            num_key_value_heads: j["num_key_value_heads"] as? Int,
            max_position_embeddings: j["max_position_embeddings"] as? Int ?? 2048,
            rms_norm_eps: j["rms_norm_eps"] as? Double ?? 1e-6,
            rope_theta: rope?["rope_theta"] as? Double ?? j["rope_theta"] as? Double ?? 10000,
            tie_word_embeddings: j["tie_word_embeddings"] as? Bool ?? false)
        if !c.problems.isEmpty { throw TrainingError.file("\(url.path): " + c.problems.joined(separator: "; ")) }
        return c
    }

    // MARK: model folder

    public static func saveModel(_ weights: LlamaWeights<Float>, config: LlamaConfig, to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try writeJSON(configJSON(config), to: dir.appendingPathComponent(configFile))
        try SafeTensors.write(
            weights.named.map { ($0.name, $0.tensor.shape, UnsafeBufferPointer($0.tensor.buffer)) },
            to: dir.appendingPathComponent(modelFile))
        try writeTokenizer(to: dir)
        // Generation ends at the end of a turn as well as at the end of a document, as in Scorer.generate.
        try writeJSON(
            [
                "bos_token_id": Int(Tokenizer.bos), "eos_token_id": [Int(Tokenizer.eos), Int(Tokenizer.endOfTurn)],
                "pad_token_id": Int(Tokenizer.eos)
            ], to: dir.appendingPathComponent("generation_config.json"))
    }

    public static func loadModel(_ dir: URL) throws -> (config: LlamaConfig, weights: LlamaWeights<Float>) {
        var config = try readConfig(dir)
        let file = dir.appendingPathComponent(modelFile)
        let tensors = try SafeTensors.read(file)
        // As transformers: a stored lm_head that differs from the embeddings is used even when the config ties them.
        if config.tie_word_embeddings, let head = tensors["lm_head.weight"], head.values != tensors["model.embed_tokens.weight"]?.values {
            config.tie_word_embeddings = false
        }
        let weights = LlamaWeights<Float>(config)
        for (name, tensor) in weights.named {
            guard let entry = tensors[name] else { throw TrainingError.file("\(file.path): missing tensor \(name)") }
            guard entry.shape == tensor.shape else {
                throw TrainingError.file("\(file.path): \(name) has shape \(entry.shape), expected \(tensor.shape)")
            }
            tensor.buffer.update(fromContentsOf: entry.values)
        }
        return (config, weights)
    }

    // MARK: PEFT adapter folder

    public static func adapterTensorNames(layer: Int, _ p: Projection) -> (a: String, b: String) {
        let base = "base_model.model.model.layers.\(layer).\(p.parent).\(p.name)"
        return (base + ".lora_A.weight", base + ".lora_B.weight")
    }

    public static func saveAdapter(_ lora: LoRA<Float>, baseModel: String?, to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var tensors: [(String, [Int], UnsafeBufferPointer<Float>)] = []
        for (l, row) in lora.adapters.enumerated() {
            for p in Projection.allCases {
                guard let a = row[p.rawValue] else { continue }
                let names = adapterTensorNames(layer: l, p)
                tensors.append((names.a, a.A.shape, UnsafeBufferPointer(a.A.buffer)))
                tensors.append((names.b, a.B.shape, UnsafeBufferPointer(a.B.buffer)))
            }
        }
        try SafeTensors.write(tensors, to: dir.appendingPathComponent(adapterFile))
        try writeTokenizer(to: dir)
        let c = lora.config
        try writeJSON(
            [
                "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": c.r, "lora_alpha": c.lora_alpha,
                "lora_dropout": c.lora_dropout, "target_modules": c.target_modules.map(\.name), "bias": "none",
                "base_model_name_or_path": baseModel.map { $0 as Any } ?? NSNull(), "fan_in_fan_out": false,
                "inference_mode": true, "init_lora_weights": true, "use_rslora": false, "use_dora": false
            ], to: dir.appendingPathComponent(adapterConfigFile))
    }

    public static func loadAdapter(_ dir: URL, model: LlamaConfig) throws -> LoRA<Float> {
        let url = dir.appendingPathComponent(adapterConfigFile)
        guard let data = FileManager.default.contents(atPath: url.path),
            let j = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { throw TrainingError.file("cannot read \(url.path)") }
        guard j["peft_type"] as? String == "LORA", let r = j["r"] as? Int, let alpha = j["lora_alpha"] as? Double else {
            throw TrainingError.file("\(url.path): needs peft_type LORA, r and lora_alpha")
        }
        if j["use_rslora"] as? Bool == true || j["use_dora"] as? Bool == true {
            throw TrainingError.file("\(url.path): rsLoRA and DoRA adapters are not supported")
        }
        guard let names = j["target_modules"] as? [String] else { throw TrainingError.file("\(url.path): target_modules must be a list") }
        let targets = try names.map { name in
            guard let p = Projection(name: name) else { throw TrainingError.file("\(url.path): unknown target module \(name)") }
            return p
        }
        var rng = SeededGenerator(seed: 0)
        let lora = LoRA<Float>(
            config: LoRAConfig(
                r: r, lora_alpha: alpha, lora_dropout: j["lora_dropout"] as? Double ?? 0,
                target_modules: targets), model: model, rng: &rng)
        let file = dir.appendingPathComponent(adapterFile)
        let tensors = try SafeTensors.read(file)
        for (l, row) in lora.adapters.enumerated() {
            for p in Projection.allCases {
                guard let a = row[p.rawValue] else { continue }
                let n = adapterTensorNames(layer: l, p)
                for (name, t) in [(n.a, a.A), (n.b, a.B)] {
                    guard let e = tensors[name] else { throw TrainingError.file("\(file.path): missing tensor \(name)") }
                    guard e.shape == t.shape else {
                        throw TrainingError.file("\(file.path): \(name) has shape \(e.shape), expected \(t.shape)")
                    }
                    t.buffer.update(fromContentsOf: e.values)
                }
            }
        }
        return lora
    }

    // MARK: tokenizer files

    /// tokenizer.json and tokenizer_config.json, so that AutoTokenizer gives Tokenizer's ids (with
    /// `<|begin_of_text|>` first, as the raw score template and pretraining documents have it) and
    /// apply_chat_template gives ChatTemplate's. The layout is huggingface/tokenizers'
    /// tokenizers/src/tokenizer/serialization.rs: a ByteLevel pre-tokenizer without the split regex maps each byte
    /// to one character (bytes_char in tokenizers/src/pre_tokenizers/byte_level.rs), and a BPE with no merges gives
    /// that character's id, which is the byte; the special tokens are added tokens at their own ids.
    public static func writeTokenizer(to dir: URL) throws {
        let printable = Set(Array(33...126) + Array(161...172) + Array(174...255))
        var vocab: [String: Int] = [:], next = 256
        for byte in 0..<256 {
            let scalar = printable.contains(byte) ? byte : next
            if !printable.contains(byte) { next += 1 }
            vocab[String(Unicode.Scalar(UInt32(scalar))!)] = byte
        }
        let specials = Tokenizer.specialNames.sorted { $0.key < $1.key }
        let bos = Tokenizer.specialNames[Tokenizer.bos]!, eos = Tokenizer.specialNames[Tokenizer.eos]!
        func piece(_ kind: String, _ id: String, _ type: Int) -> [String: Any] { [kind: ["id": id, "type_id": type]] }
        try writeJSON(
            [
                "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "normalizer": NSNull(),
                "added_tokens": specials.map { id, name in
                    [
                        "id": Int(id), "content": name, "single_word": false, "lstrip": false, "rstrip": false,
                        "normalized": false, "special": true
                    ] as [String: Any]
                },
                "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
                "post_processor": [
                    "type": "TemplateProcessing",
                    "single": [piece("SpecialToken", bos, 0), piece("Sequence", "A", 0)],
                    "pair": [
                        piece("SpecialToken", bos, 0), piece("Sequence", "A", 0), piece("SpecialToken", bos, 1), piece("Sequence", "B", 1)
                    ],
                    "special_tokens": [bos: ["id": bos, "ids": [Int(Tokenizer.bos)], "tokens": [bos]]]
                ],
                "decoder": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
                "model": [
                    "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                    "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                    "vocab": vocab, "merges": [String]()
                ]
            ], to: dir.appendingPathComponent("tokenizer.json"))
        // ChatTemplate.render, with ChatTemplate.prompt's `<|assistant|>` as the generation prompt.
        let template =
            "{{ '\(bos)' }}{% for message in messages %}"
            + "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
            + "{{ raise_exception('roles are system, user and assistant') }}{% endif %}"
            + "{{ '<|' + message['role'] + '|>' + message['content'] + '\(Tokenizer.specialNames[Tokenizer.endOfTurn]!)' }}"
            + "{% endfor %}{% if add_generation_prompt %}{{ '\(Tokenizer.specialNames[Tokenizer.assistant]!)' }}{% endif %}"
        try writeJSON(
            [
                "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos, "pad_token": eos,
                "additional_special_tokens": specials.map(\.value).filter { $0 != bos && $0 != eos },
                "clean_up_tokenization_spaces": false, "chat_template": template
            ], to: dir.appendingPathComponent("tokenizer_config.json"))
    }

    // MARK: helpers

    /// Builds a folder next to its destination and swaps it in, so a reader never sees half a checkpoint.
    public static func replaceDirectory(_ dir: URL, write: (URL) throws -> Void) throws {
        let fm = FileManager.default
        let tmp = dir.deletingLastPathComponent().appendingPathComponent(".\(dir.lastPathComponent).partial")
        try? fm.removeItem(at: tmp)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        try write(tmp)
        try? fm.removeItem(at: dir)
        try fm.moveItem(at: tmp, to: dir)
    }

    static func writeJSON(_ object: [String: Any], to url: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try (data + Data("\n".utf8)).write(to: url, options: .atomic)
    }
}
