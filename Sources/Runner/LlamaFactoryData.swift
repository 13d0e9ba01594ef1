import Foundation
import HarrowCore
import Sweep

/// Where LLaMA-Factory finds a dataset it is given by name: the entry of `DATASET_DIR/dataset_info.json`
/// (hiyouga/LLaMA-Factory@ff6d4d12, `get_dataset_list` in src/llamafactory/data/parser.py; `_load_single_dataset` in
/// data/loader.py). Paths resolve against the working directory, where harrow starts the trainer.
public enum LlamaFactoryData {
    public struct Entry: Sendable, Equatable {
        /// The file as LLaMA-Factory opens it, `DATASET_DIR/FILE_NAME` (relative when the folder is).
        public var path: String
        /// `num_samples`: the file is resampled to exactly this many records.
        public var samples: Int?
    }

    /// The local file a dataset name loads, or nil: a hub dataset (`dataset_dir: ONLINE`, `REMOTE:repo`, or an entry
    /// with a hub, script or cloud source, which the loader prefers to `file_name`), an unknown name, or a file that
    /// is not JSON.
    public static func entry(name: String, datasetDir: String, workingDirectory: String) -> Entry? {
        guard datasetDir != "ONLINE", !datasetDir.hasPrefix("REMOTE:") else { return nil }
        func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : workingDirectory + "/" + path }
        guard let text = regularFileText(resolve(datasetDir + "/dataset_info.json")),
            let info = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
            let entry = info[name] as? [String: Any],
            ["hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name"].allSatisfy({ entry[$0] == nil }),
            let file = entry["file_name"] as? String, file.hasSuffix(".json") || file.hasSuffix(".jsonl")
        else { return nil }
        let samples = (entry["num_samples"] as? Int).flatMap { $0 > 0 ? $0 : nil }
        return Entry(path: datasetDir + "/" + file, samples: samples)
    }

    /// The text of a regular UTF-8 file under 16 MiB (a config or `dataset_info.json`), else nil.
    public static func regularFileText(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size < 1 << 24,
            let data = FileManager.default.contents(atPath: path)
        else { return nil }
        return String(data: data, encoding: .utf8)
    }
}

extension Experiment.Trainer {
    /// The profile's base config by the tool's own names (`per_device_train_batch_size: 4`), read from the working
    /// directory as the runner reads it; empty without a profile config, or when it cannot be read.
    public func baseConfig(workingDirectory: String) -> [String: ParamValue] {
        guard let path = profile?.config else { return [:] }
        let full = path.hasPrefix("/") ? path : workingDirectory + "/" + path
        return LlamaFactoryData.regularFileText(full).flatMap(PlanAdvice.configArguments(yaml:)) ?? [:]
    }
}
