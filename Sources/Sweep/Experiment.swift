import HarrowCore

/// A sweep definition: what to vary, how to search it, and how to start a trainer for each trial.
/// W&B sweep files (`method: grid | random | bayes`) load unchanged; Harrow's additions are listed in `Experiment.Key`.
public struct Experiment: Sendable {
    public enum Method: String, Sendable {
        case grid, random, bayes
        /// Optuna's tree-structured Parzen estimator: Harrow's own, beside W&B's methods.
        case tpe
        /// Trials are proposed one at a time as slots free, from the results so far.
        public var isAdaptive: Bool { self == .bayes || self == .tpe }
    }

    public struct Metric: Sendable, Hashable {
        public var name: String
        public var goal: Goal
        /// Which way the metric improves (`HarrowCore.Goal`).
        public typealias Goal = HarrowCore.Goal
    }

    public struct Parameter: Sendable {
        /// Nested names joined with `.` (`lora.r`), as the trainer contract names them.
        public var name: String
        public var distribution: Distribution
        public var location: SourceLocation
        /// The keys of the nested `parameters:` blocks down to it (`[lora, r]`); one key for a top-level parameter.
        public var path: [String] = []
    }

    public struct Trainer: Sendable {
        /// Argv template with `{config}`, `{run_dir}`, `{param.NAME}` and W&B's `${…}` macros.
        public var command: [String]
        /// Seconds before a trial is stopped (SIGTERM, then SIGKILL).
        public var timeout: Double?
        public var retries: Int
        /// Where the trainer's curves come from when it does not write Harrow's metrics lines.
        public var metrics: MetricsLog? = nil
        /// A tool run unchanged (`profile: llamafactory` or `hf`); `command` is then its template.
        public var profile: TrainerProfile? = nil
    }

    /// `trainer.metrics: {format, path, keys}`: a trainer's own log, read live as it grows.
    public struct MetricsLog: Sendable, Hashable {
        public enum Format: String, Sendable, CaseIterable {
            /// Harrow's metrics lines at `$HARROW_METRICS` (the default).
            case harrow
            /// LLaMA-Factory's `trainer_log.jsonl`.
            case llamafactory
            /// ms-swift's `logging.jsonl` (under its versioned `v*` folder: a `*` in the path takes the newest match).
            case msSwift = "ms-swift"
            /// Hugging Face Trainer / TRL: `checkpoint-N/trainer_state.json` as each is saved, and `trainer_state.json`.
            case hf
            /// Any JSON lines, names mapped by `keys`.
            case jsonl
            /// W&B's offline run file, `wandb/offline-run-*/run-*.wandb` under `WANDB_DIR` (the run folder): what the
            /// script sent with `wandb.log`, under its own keys (mapped by `keys`).
            case wandb
        }
        public var format: Format
        /// Relative to the run folder (the trainer's output directory).
        public var path: String
        /// The log's names onto Harrow's (`loss: train/loss`, `global_step: step`), for `jsonl`.
        public var keys: [String: String]

        public static func defaultPath(_ format: Format) -> String? {
            switch format {
            case .harrow: TrainerContract.RunFile.metrics
            case .llamafactory: "trainer_log.jsonl"
            case .msSwift: "v*/logging.jsonl"
            case .hf: "."
            case .jsonl: nil
            case .wandb: TrainerContract.RunFile.wandb
            }
        }
    }

    /// `executor: {type: slurm, ...}`: where trials run. Absent means this machine. Not part of a trial's identity.
    public struct ExecutorSettings: Sendable, Hashable {
        public enum Kind: String, Sendable, CaseIterable { case local, slurm }
        public var type: Kind = .slurm
        public var partition: String?
        /// sbatch's `--time`, in its own syntax; absent means `trainer.timeout` rounded up to minutes.
        public var time: String?
        public var cpusPerTask: Int?
        public var mem: String?
        /// `gpu:1`: Slurm sets CUDA_VISIBLE_DEVICES for the task.
        public var gres: String?
        /// Bytes a card of the partition holds: without `gres`, each trial asks for the cards its memory estimate
        /// needs (`SlurmRequest`).
        public var gpuMemory: Int?
        /// Tasks of one array running at once (`--array=…%N`).
        public var arrayParallelism: Int?
        public var extraArgs: [String] = []
        /// The longest wait between queue polls, in seconds (polls back off to it while nothing changes).
        public var poll: Double?
        public init() {}
    }

    public enum Resources: Sendable, Hashable {
        case parallel(Int)
        case gpus([Int])
    }

    /// `resources: {gpus: [...], gpu_memory: 80GB, gpus_per_trial: 2}`: trials share a card while their memory
    /// estimates fit it, and a trial may take several cards.
    public struct GPUPacking: Sendable, Hashable {
        /// Bytes a card holds (GB read as GiB, as nvidia-smi and PyTorch report them); nil: one trial a card.
        public var memory: Int?
        public var perTrial = 1
        public init() {}
    }
    public var gpuPacking = GPUPacking()

    /// W&B's hyperband early termination (see `Hyperband`).
    public struct EarlyTerminate: Sendable, Hashable {
        public var type: String
        public var minIter: Int?
        public var maxIter: Int?
        public var s: Double?
        public var eta: Double
        public var strict: Bool

        public init(
            type: String = "hyperband", minIter: Int? = nil, maxIter: Int? = nil, s: Double? = nil, eta: Double = 3, strict: Bool = true
        ) {
            self.type = type
            self.minIter = minIter
            self.maxIter = maxIter
            self.s = s
            self.eta = eta
            self.strict = strict
        }
    }

    /// One `exclude:` entry: a partial assignment; a trial matching every key is dropped.
    /// A list where the parameter's values are not lists means "any of these".
    public struct Exclusion: Sendable {
        public var assignment: [(name: String, value: ParamValue)]
        public var location: SourceLocation
    }

    public var file: String
    public var name: String
    public var description: String?
    public var method: Method
    public var metric: Metric?
    public var count: Int?
    public var seed: UInt64
    public var runCap: Int?
    public var program: String?

    /// A W&B sweep file: it names a `program`, or its command uses W&B's `${…}` macros. Its trials get what W&B's
    /// agent gives a run (`WandbAgent`), and their curves come from the run's `.wandb` file.
    public var isWandb: Bool {
        trainer.profile == nil && (program != nil || trainer.command.contains { $0.hasPrefix("${") && !$0.hasPrefix("${envvar:") })
    }

    /// Each parameter's `parameters:` keys, for W&B's nested arguments.
    public var parameterPaths: [String: [String]] {
        Dictionary(parameters.map { ($0.name, $0.path) }, uniquingKeysWith: { a, _ in a })
    }

    /// Where a trial's curves come from: `trainer.metrics`, else a W&B script's `.wandb` file; nil means Harrow's
    /// metrics lines.
    public var trainerLog: MetricsLog? {
        trainer.metrics ?? (isWandb ? MetricsLog(format: .wandb, path: TrainerContract.RunFile.wandb, keys: [:]) : nil)
    }
    public var trainer: Trainer
    public var resources: Resources?
    public var executor: ExecutorSettings? = nil
    public var earlyTerminate: EarlyTerminate?
    /// Sorted by name, W&B's grid order: the last name varies fastest.
    public var parameters: [Parameter]
    public var exclude: [Exclusion]
    /// The `where:` constraint, bound to parameter slots.
    public var constraint: Expression?
    public var constraintLocation: SourceLocation?
    /// `diagnosis:` threshold overrides by name (`DiagnosisSettings.names`; see `Diagnosis.Thresholds`).
    public var diagnosis: [String: Double] = [:]
    /// `early_stop: {patience: N, min_delta: x}`: end a trial once val loss stops improving.
    public var earlyStop: EarlyStopRule?

    public struct EarlyStopRule: Sendable, Hashable {
        public var patience: Int
        public var minDelta: Double
    }

    /// `eval: {evalsets: [...], scorer: [argv…]}`: evaluate every trial after training.
    public var evaluation: Evaluation?

    /// `advice: {ignore: [epochs, warmup]}`: `harrow plan`'s rules of thumb this experiment silences (`PlanAdvice`).
    public var adviceIgnore: Set<PlanAdvice.Rule> = []

    /// `data: {check: false, allow_overlap: true}`: whether plan and sweep check the datasets trials name.
    public var dataCheck = DataCheckRule()

    /// `notify: {command: [...], on: [finished, failed_first]}`: the user's command, told of the sweep.
    public var notify: NotifyRule?

    public struct Evaluation: Sendable, Hashable {
        public var evalsets: [String]
        /// A scorer command speaking the score protocol; nil means `harrow-train score` on the run's checkpoint.
        public var scorer: [String]?
        /// Seconds a scorer may go without answering before it is stopped; nil means the scorer's default.
        public var timeout: Double? = nil
    }

    /// Problems worth knowing that do not stop planning.
    public var warnings: [Diagnostic]

    /// The command a trial runs when the file names neither `command` nor `trainer.command`.
    public static let builtInTrainerCommand = ["harrow-train", "sft", "--config", "{config}", "--run-dir", "{run_dir}"]
    /// W&B's default command for a file with `program`.
    public static let wandbDefaultCommand = ["${env}", "${interpreter}", "${program}", "${args}"]

    /// Parameters the built-in trainer reads (docs/DESIGN.md's trainer contract).
    public static let builtInTrainerParameters = TrainerContract.parameters

    public var usesBuiltInTrainer: Bool { trainer.command.first.map(TrainerContract.isHarrowTrain) ?? false }
    /// `harrow-train sft` trains the trials (not another of its subcommands, such as the search benchmark's objective):
    /// its tokenizer and its `max_seq_len` default apply.
    public var trainsWithHarrowTrain: Bool { usesBuiltInTrainer && trainer.command.dropFirst().first == "sft" }

    public func parameter(named name: String) -> Parameter? { parameters.first { $0.name == name } }
}
