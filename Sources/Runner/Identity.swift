import HarrowCore
import Foundation
import Sweep
import Tracking

/// Builds each trial's identity from the code state of the repository holding the experiment, the
/// trainer programs, and the files its parameters name, hashed once through the store's digest cache.
struct IdentityBuilder {
    let store: Store
    let experiment: Experiment
    let workingDirectory: String
    let toolDirectory: String?
    let code: Provenance
    private var programs: [String: String] = [:]
    private var uncommitted: [String: String] = [:]

    init(store: Store, experiment: Experiment, workingDirectory: String, toolDirectory: String?, code: Provenance) {
        self.store = store
        self.experiment = experiment
        self.workingDirectory = workingDirectory
        self.toolDirectory = toolDirectory
        self.code = code
        programs = hashPrograms()
        uncommitted = countedChanges()
    }

    func identity(of trial: Trial) -> TrialIdentity {
        var identity = TrialIdentity(paramsKey: trial.key, commit: code.commit, uncommitted: uncommitted)
        identity.programs = programs
        for input in Inputs.files(of: trial, workingDirectory: workingDirectory) {
            identity.inputs[display(input.path)] = store.digest(ofFile: input.path)?.hex ?? "unreadable"
        }
        return identity
    }

    /// Uncommitted changes that count: all but those to experiment files (YAML beside the experiment file),
    /// whose content reaches each trial through its parameters: extending a grid, or editing another
    /// experiment, must not rerun the trials already done.
    func countedChanges() -> [String: String] {
        guard let root = code.repository else { return [:] }
        let folder = URL(fileURLWithPath: absolute(experiment.file)).resolvingSymlinksInPath().deletingLastPathComponent().path
        return code.uncommitted.filter { change in
            let file = URL(fileURLWithPath: root + "/" + change.key).resolvingSymlinksInPath()
            return !(file.deletingLastPathComponent().path == folder && ["yaml", "yml"].contains(file.pathExtension))
        }
    }

    /// harrow-train's binary, a trainer script or program named by path, and a profile's script or config.
    func hashPrograms() -> [String: String] {
        var out: [String: String] = [:]
        var named: [String] = []
        if let first = experiment.trainer.command.first, !first.contains("${") { named.append(first) }
        if let program = experiment.program { named.append(program) }
        for name in named {
            let isHarrowTrain = TrainerContract.isHarrowTrain(name)
            guard isHarrowTrain || name.contains("/") || experiment.program == name,
                let path = locateProgram(name, toolDirectory: toolDirectory, workingDirectory: workingDirectory),
                let digest = store.digest(ofFile: path)
            else { continue }
            out[isHarrowTrain ? "harrow-train" : display(path)] = digest.hex
        }
        // The script an interpreter runs (`[python, train.py, …]`, `[sh, run.sh]`): an edit to it is a different
        // training, as an edit to a trainer named by path is.
        for argument in experiment.trainer.command.dropFirst() where !argument.contains("{") && !argument.contains("${") {
            guard Self.scriptExtensions.contains((argument as NSString).pathExtension.lowercased()),
                let digest = store.digest(ofFile: absolute(argument))
            else { continue }
            out[display(absolute(argument))] = digest.hex
        }
        // A profile's script or LLaMA-Factory config: an edit to either is a different training.
        for file in [experiment.trainer.profile?.program, experiment.trainer.profile?.config].compactMap({ $0 }) {
            if let digest = store.digest(ofFile: absolute(file)) { out[display(absolute(file))] = digest.hex }
        }
        return out
    }

    static let scriptExtensions: Set<String> = ["py", "sh", "bash", "js", "mjs", "rb", "pl", "r", "jl", "lua"]

    func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : workingDirectory + "/" + path }

    /// A path as the user named it: relative to the working directory when inside it.
    func display(_ path: String) -> String {
        let path = URL(fileURLWithPath: path).standardized.path
        let base = workingDirectory.hasSuffix("/") ? workingDirectory : workingDirectory + "/"
        return path.hasPrefix(base) ? String(path.dropFirst(base.count)) : path
    }
}

/// Where a trainer program is: a path as given (relative to the working directory), else the folder of the
/// running harrow (where harrow-train is built next to it), else PATH.
func locateProgram(_ name: String, toolDirectory: String?, workingDirectory: String) -> String? {
    let fm = FileManager.default
    if name.contains("/") {
        let path = name.hasPrefix("/") ? name : workingDirectory + "/" + name
        return fm.fileExists(atPath: path) ? path : nil
    }
    if let toolDirectory, fm.isExecutableFile(atPath: toolDirectory + "/" + name) { return toolDirectory + "/" + name }
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") where fm.isExecutableFile(atPath: "\(dir)/\(name)")
    {
        return "\(dir)/\(name)"
    }
    // A program file next to the experiment (W&B's `program: train.py`).
    let path = workingDirectory + "/" + name
    return fm.fileExists(atPath: path) ? path : nil
}
