/// The shipped dashboards, used where a project has no `dashboards/` of its own.
/// A test keeps them identical to the files in `dashboards/`.
extension Dashboard {
    public static let builtIn: [String: String] = [
        "sweep": """
        # The morning view of a sweep: `harrow report --sweep NAME` renders it as reports/NAME/index.html.
        # Panels: table, effects, scaling, parallel, curves, scatter, heatmap, bars3h, usability, forgetting, tradeoff, progress, flips (see dashboards/README.md).
        title: overview
        # metric: val/loss          # ranks runs (table order, top-k curves, the best run, the compared runs);
                                    # default: the sweep's own metric, else val/loss
        panels:
          - type: table             # every run (the best 25 shown, a filter and "show all" for the rest); seed repeats folded to mean ± sd
          - type: effects           # which parameter mattered: mean ± se per value, share of variance
          # Only when the sweep varies max_samples: val loss and each 3H dimension's error against records on log-log axes, a
          # power law with its interval, and the records it predicts for each target (these, else the gate's thresholds).
          - type: scaling
            gate: gates/release.yaml
            target: {val/loss: 0.3, helpful: 0.6}
          - type: parallel          # parallel coordinates of the varying parameters and the metric
          - type: curves
            title: Train (dashed) and val loss of the best configurations, best step marked
            metrics: [train/loss, val/loss]
            top: 8
          - type: scatter
            title: Best val loss against learning rate, by LoRA rank
            x: lr
            y: val/loss
            color: lora_r
          - type: heatmap
            title: Best val loss by learning rate and epochs
            x: lr
            y: epochs
            value: val/loss
          - type: bars3h
            title: 3H scores of the best runs against the release gate
            gate: gates/release.yaml
            top: 6
          - usability               # judged evalsets only: usable share and each rubric dimension with Wilson 95% intervals
          - type: forgetting
            x: mix_ratio
            by: base_model
          - type: tradeoff          # in-domain gain against forgetting, with intervals; the Pareto front labelled
          - type: progress          # the metric by trial and the best so far: was the search still improving?
        """,
        "run": """
        # One page per run: reports/NAME/runs/RUN.html.
        title: run
        panels:
          - overview                # status, timing, git commit and dirty flag, command, stderr of a failed run
          - verdict                 # the diagnosis with its evidence and advice
          - type: curves
            title: Train and val loss, best step marked
            metrics: [train/loss, val/loss]
            points: 600
          - type: curves
            title: Val loss by task type (which one turned first)
            metrics: ["val/loss@*"]
            points: 600
          - type: curves
            title: Learning-rate schedule
            metrics: [lr]
          - type: bars3h
            title: 3H scores against the release gate
            gate: gates/release.yaml
          - usability               # judged evalsets only: the shares with intervals, then the lowest-scored replies
          - scores                  # every evalset by dimension and task_type
          - params
          - artifacts
        """,
        "compare": """
        # The comparison page: reports/NAME/compare.html. The first run is the reference.
        title: compare
        panels:
          - type: table             # the parameters that differ, metrics with deltas against the first run
          - type: curves
            title: Train (dashed) and val loss
          - type: bars3h
            title: 3H scores against the release gate
            gate: gates/release.yaml
          - usability               # judged evalsets only: usable share and each rubric dimension with Wilson 95% intervals
          - type: flips
            limit: 25
        """
    ]
}
