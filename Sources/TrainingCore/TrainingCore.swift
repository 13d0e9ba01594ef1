import CBLAS

/// Placeholder so the package builds; the training core lands with its issue.
public enum TrainingCore {
    public static var blasConfig: String { String(cString: openblas_get_config()) }
}
