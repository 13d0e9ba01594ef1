import Foundation

/// docs/DESIGN.md's trainer contract in one place: the parameters harrow-train reads, the run folder and the
/// metric keys trainers write, the shipped starting models, and where harrow-train is found.
public enum TrainerContract {
    /// What `harrow-train sft` reads from trial.json (declared in TrainerParameters).
    public static let parameters = Set(TrainerParameters.read(by: .sft).map(\.name))
    /// What `harrow-train pretrain` reads besides: the shape of the model it builds.
    public static let modelShape = Set(TrainerParameters.all.filter(\.pretrainOnly).map(\.name))
    /// Parameters naming files a trial reads: their sha256 is part of its identity.
    public static let inputParameters = ["base_model", "dataset", "val_dataset", "general_dataset"]

    /// The run folder's files.
    public enum RunFile {
        public static let trial = "trial.json"
        public static let metrics = "metrics.jsonl"
        public static let stdout = "stdout.log"
        public static let stderr = "stderr.log"
        /// Where a W&B script's offline run file lands with `WANDB_DIR` set to the run folder.
        public static let wandb = "wandb/offline-run-*/run-*.wandb"
    }

    /// Canonical metric keys.
    public enum Metric {
        public static let trainLoss = "train/loss"
        public static let valLoss = "val/loss"
        /// Val loss over the validation records of one task type (ms-swift calls it channel loss): `val/loss@qa/dose`.
        public static func valLoss(task: String) -> String { valLoss + taskSeparator + task }
        public static let taskSeparator = "@"
        /// The task type of a `val/loss@TASK` key; nil for any other key.
        public static func task(ofValLoss key: String) -> String? {
            let prefix = valLoss + taskSeparator
            return key.hasPrefix(prefix) && key.count > prefix.count ? String(key.dropFirst(prefix.count)) : nil
        }
        /// Validation records of one task type (`val/records@qa/dose`), logged once at step 0: how much a channel's
        /// curve can be trusted.
        public static func valRecords(task: String) -> String { "val/records" + taskSeparator + task }
        /// The task type of a `val/records@TASK` key; nil for any other key.
        public static func task(ofValRecords key: String) -> String? {
            let prefix = "val/records" + taskSeparator
            return key.hasPrefix(prefix) && key.count > prefix.count ? String(key.dropFirst(prefix.count)) : nil
        }
        public static let lr = "lr"
        public static let epoch = "epoch"
        public static let gradNorm = "grad_norm"
    }

    /// `base` and `chat` name the shipped starting models in `models/`; anything else is a path.
    public static func modelPath(_ name: String) -> String { isShippedModel(name) ? "models/" + name : name }

    public static func isShippedModel(_ name: String) -> Bool { name == "base" || name == "chat" }

    /// harrow-train: next to the running harrow (where the build puts it), else whatever PATH finds.
    public static func harrowTrain(nextTo directory: String?) -> String {
        if let directory, FileManager.default.isExecutableFile(atPath: directory + "/harrow-train") { return directory + "/harrow-train" }
        return "harrow-train"
    }

    /// Whether a command's program is harrow-train.
    public static func isHarrowTrain(_ program: String) -> Bool { (program as NSString).lastPathComponent == "harrow-train" }
}
