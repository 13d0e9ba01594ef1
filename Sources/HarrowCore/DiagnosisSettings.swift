/// The thresholds an experiment's `diagnosis:` section may set: the experiment parser checks names against
/// this list, the diagnosis reads them (`Thresholds.set`).
public enum DiagnosisSettings {
    public static let names = ["overfit_rise_percent", "still_falling", "minimum_fall", "minimum_progress", "tail_fraction", "unstable_noise",
                               "unstable_rise", "diverged_rise", "stalled_change", "start_fraction", "minimum_points"]
}
