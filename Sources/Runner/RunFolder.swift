import HarrowCore
import Foundation
import Sweep
import Tracking

/// docs/DESIGN.md's run folder: `trial.json`, `metrics.jsonl`, `stdout.log`, `stderr.log`, checkpoints.
struct RunFolder {
    let path: String

    var trialJSON: String { path + "/" + TrainerContract.RunFile.trial }
    var metrics: String { path + "/" + TrainerContract.RunFile.metrics }
    var stdout: String { path + "/" + TrainerContract.RunFile.stdout }
    var stderr: String { path + "/" + TrainerContract.RunFile.stderr }

    /// Prepares the folder for an attempt; files of an earlier attempt move to `attempts/N/`.
    func prepare(attempt: Int, trial: Trial, files: [String: String]) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
        if attempt > 1 {
            let archive = path + "/attempts/\(attempt - 1)"
            try? fm.removeItem(atPath: archive)
            try fm.createDirectory(atPath: archive, withIntermediateDirectories: true)
            for name in (try? fm.contentsOfDirectory(atPath: path)) ?? [] where name != "attempts" {
                try? fm.moveItem(atPath: path + "/" + name, toPath: archive + "/" + name)
            }
        }
        try (trial.parametersJSON + "\n").write(toFile: trialJSON, atomically: true, encoding: .utf8)
        fm.createFile(atPath: metrics, contents: nil)
        for (file, text) in files {
            try fm.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: file, atomically: true, encoding: .utf8)
        }
    }

    /// The last lines of stderr, for the store and the summary.
    func stderrTail(maxBytes: Int = 4096, maxLines: Int = 30) -> String? {
        guard let handle = FileHandle(forReadingAtPath: stderr) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > UInt64(maxBytes) ? size - UInt64(maxBytes) : 0)
        guard let data = try? handle.readToEnd(), !data.isEmpty else { return nil }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let tail = lines.suffix(maxLines + 1).joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        return tail.isEmpty ? nil : tail
    }
}

/// Files a trial reads, by parameter: their sha256 goes with the run, so a result can be traced to its inputs.
enum Inputs {
    static let parameters = TrainerContract.inputParameters

    /// Existing files named by the trial (a model folder contributes its weight and config files).
    static func files(of trial: Trial, workingDirectory: String) -> [(role: String, path: String)] {
        var out: [(String, String)] = []
        let fm = FileManager.default
        for name in parameters {
            guard case .string(var value)? = trial[name] else { continue }
            if name == "base_model" { value = TrainerContract.modelPath(value) }
            let path = value.hasPrefix("/") ? value : workingDirectory + "/" + value
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                for file in ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted()
                where file.hasSuffix(".safetensors") || file == "config.json" {
                    out.append((name, path + "/" + file))
                }
            } else {
                out.append((name, path))
            }
        }
        return out
    }
}
