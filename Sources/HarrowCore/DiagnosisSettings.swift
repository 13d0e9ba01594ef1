/// The thresholds an experiment's `diagnosis:` section may set: the experiment parser checks names against
/// this list, the diagnosis reads them (`Thresholds.set`).
public enum DiagnosisSettings {
    public static let names = [
        "overfit_rise_percent", "noise_multiple", "still_falling", "still_falling_per_epoch", "settling", "minimum_fall",
        "minimum_decrease", "minimum_progress",
        "tail_fraction", "unstable_noise", "unstable_rise", "diverged_rise", "spikes", "stalled_change", "start_fraction",
        "plateau_fraction", "minimum_points", "channel_records"
    ]
}
