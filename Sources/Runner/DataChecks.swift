import Evaluation
import Foundation
import Sweep
import Tracking

/// Runs `harrow data check` on every dataset a plan's trials name, against the evalsets its experiment scores
/// with, before the night. Findings are kept in the store by the file's content, so an unchanged file is read once.
public enum DataChecks {
    /// Nil when the experiment turns the check off. `store` (optional, possibly read-only) supplies and, when
    /// writable, keeps earlier findings.
    public static func check(_ plan: Plan, workingDirectory: String, store: Store? = nil) -> DataCheck.Night? {
        let rule = plan.experiment.dataCheck
        guard rule.check else { return nil }
        func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : workingDirectory + "/" + path }

        var night = DataCheck.Night()
        night.allowOverlap = rule.allowOverlap
        // The evalsets' items: a folder holds items.jsonl; a file is read as it is.
        var referenceFiles: [(path: String, full: String)] = []
        for evalset in plan.experiment.evaluation?.evalsets ?? [] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: resolve(evalset), isDirectory: &isDirectory) else { continue }
            let path = isDirectory.boolValue ? (evalset.hasSuffix("/") ? evalset : evalset + "/") + "items.jsonl" : evalset
            if isRegularFile(resolve(path)) { referenceFiles.append((path, resolve(path))) }
        }
        night.against = referenceFiles.map(\.path)
        let referenceDigests = referenceFiles.compactMap { sha256(ofFile: $0.full)?.hex }
        var reference: DataCheck.Reference?
        func loadReference() -> DataCheck.Reference? {
            guard !referenceFiles.isEmpty else { return nil }
            if let reference { return reference }
            var records: [DataCheck.Record] = []
            for f in referenceFiles {
                guard let data = FileManager.default.contents(atPath: f.full) else { continue }
                records += DataCheck.parse(data, file: f.path, requireResponse: false).records
            }
            reference = DataCheck.reference(records)
            return reference
        }

        let tokens: DataCheck.TokenCount = plan.experiment.trainsWithHarrowTrain ? .harrowTrain : .estimate
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var seen = Set<String>()
        for dataset in datasets(plan, workingDirectory: workingDirectory, notChecked: &night.notChecked) {
            let full = resolve(dataset.path)
            guard isRegularFile(full), let digest = sha256(ofFile: full) else {
                if seen.insert("?" + dataset.path).inserted { night.notChecked.append(dataset.path) }
                continue
            }
            guard seen.insert(dataset.role.rawValue + "\n" + dataset.path).inserted else { continue }
            var settings = DataCheck.Settings()
            settings.maxSeqLen = dataset.maxSeqLen
            settings.tokens = tokens
            // Everything the findings depend on: the file (by path, which they quote, and by content), the settings
            // and the evalsets' contents.
            let key =
                [
                    "data-check/1", dataset.path, digest.hex, settings.maxSeqLen.map(String.init) ?? "-", tokens.rawValue,
                    String(settings.threshold), String(settings.hashes), String(settings.bands)
                ] + referenceDigests
            let keyText = key.joined(separator: "|")
            if let json = try? store?.cachedDataCheck(key: keyText),
                let report = try? JSONDecoder().decode(DataCheck.FileReport.self, from: Data(json.utf8))
            {
                night.files.append(.init(role: dataset.role.rawValue, sha256: digest.hex, cached: true, report: report))
                continue
            }
            guard let data = FileManager.default.contents(atPath: full) else { night.notChecked.append(dataset.path); continue }
            let report = DataCheck.check(data, file: dataset.path, against: loadReference(), settings: settings)
            night.files.append(.init(role: dataset.role.rawValue, sha256: digest.hex, cached: false, report: report))
            if let store, let json = try? encoder.encode(report) {
                try? store.saveDataCheck(key: keyText, report: String(decoding: json, as: UTF8.self))
            }
        }
        night.findValidationGaps()
        return night
    }

    /// The files to check: the plan's datasets by path; under the LLaMA-Factory profile, dataset names (the trials'
    /// or its config's, comma-separated as it splits them) resolved through `dataset_dir/dataset_info.json`, at its
    /// `cutoff_len` (LLaMA-Factory's default 2048, data_args.py). Names that resolve to no local file are listed.
    static func datasets(_ plan: Plan, workingDirectory: String, notChecked: inout [String]) -> [NamedDataset] {
        func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : workingDirectory + "/" + path }
        guard let profile = plan.experiment.trainer.profile, profile.kind == .llamafactory else { return plan.datasets }
        let config = plan.experiment.trainer.baseConfig(workingDirectory: workingDirectory)
        let cutoff =
            plan.trials.compactMap { $0[profile.name(of: "max_seq_len")]?.number ?? $0["max_seq_len"]?.number }.min()
            ?? config["cutoff_len"]?.number ?? 2048
        let datasetDir = plan.trials.first.flatMap { $0["dataset_dir"]?.plain } ?? config["dataset_dir"]?.plain ?? "data"
        var out: [NamedDataset] = [], missing: [String] = []
        func add(_ name: String, dir: String, role: NamedDataset.Role) {
            guard let entry = LlamaFactoryData.entry(name: name, datasetDir: dir, workingDirectory: workingDirectory) else {
                if !missing.contains(name) { missing.append(name) }
                return
            }
            out.append(NamedDataset(path: entry.path, role: role, maxSeqLen: Int(cutoff), trials: plan.trials.count))
        }
        for source in PlanAdvice.dataSources(plan, config: config) {
            if case .llamaFactory(let name, let dir) = source { add(name, dir: dir, role: .train) }
        }
        for d in plan.datasets {
            if isRegularFile(resolve(d.path)) { out.append(d); continue }
            guard d.role != .train else { continue }  // the training names came from the sources above
            for name in d.path.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
                add(name, dir: datasetDir, role: d.role)
            }
        }
        notChecked += missing
        return out
    }

    /// Keeps the check with the sweep, for its report.
    public static func save(_ night: DataCheck.Night, sweep: String, in store: Store) throws(StoreError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        guard let json = try? encoder.encode(night) else { return }
        try store.saveDataCheck(sweep: sweep, report: String(decoding: json, as: UTF8.self))
    }

    public static func stored(sweep: String, in store: Store) -> DataCheck.Night? {
        guard let json = try? store.dataCheck(sweep: sweep) else { return nil }
        return try? JSONDecoder().decode(DataCheck.Night.self, from: Data(json.utf8))
    }

    /// A regular file (so a FIFO or a device named as a dataset cannot hang the check).
    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }
}

extension DataChecks {
    /// What a sweep says when it will not start on this data; empty when it will.
    public static func refusal(_ night: DataCheck.Night) -> [String] {
        guard night.errors > 0 else { return [] }
        var why: [String] = []
        if night.malformed > 0 { why.append("\(night.malformed) malformed line\(night.malformed == 1 ? "" : "s")") }
        if !night.allowOverlap, night.overlaps > 0 {
            why.append("\(night.overlaps) record\(night.overlaps == 1 ? "" : "s") holding evaluation prompts")
        }
        return [
            "data: the sweep will not start: " + why.joined(separator: " and ")
                + "; fix the data (or, for evaluation prompts, add `data: {allow_overlap: true}` to the experiment)"
        ]
    }
}
