import Testing
@testable import Sweep

@Suite struct CommandTemplateTests {
    @Test func harrowPlaceholdersInsideTokens() throws {
        let p = try plan(
            """
            parameters:
              lr: {values: [0.0003]}
              lora_targets: {value: [q_proj, v_proj]}
              tag: "a b"
            trainer:
              command: [python3, -u, train.py, "--config={config}", "--out", "{run_dir}/out", "--lr", "{param.lr}", "--t={param.lora_targets}", "{param.tag}"]
            """)
        let x = CommandTemplate.expand(
            p.experiment.trainer.command, trial: p.trials[0], program: nil,
            configPath: "/r/trial.json", runDir: "/r")
        // Each value stays one argv element: no shell, no word splitting.
        #expect(
            x.argv == [
                "python3", "-u", "train.py", "--config=/r/trial.json", "--out", "/r/out", "--lr", "0.0003",
                #"--t=["q_proj", "v_proj"]"#, "a b"
            ])
        #expect(x.files.isEmpty)
    }

    @Test func wandbRenderingFollowsPythonStr() throws {
        let p = try plan(
            """
            method: grid
            program: t.py
            parameters:
              lr: 0.00001
              fp16: true
              none: null
              targets: {value: [q_proj, v_proj]}
              name: "it's"
            command:
              - ${args}
              - ${args_json}
              - ${args_no_equals}
              - ${unknown_macro}
            """)
        let x = CommandTemplate.expand(p.experiment.trainer.command, trial: p.trials[0], program: "t.py", configPath: "", runDir: "")
        #expect(Array(x.argv.prefix(5)) == ["--fp16=True", "--lr=1e-05", "--name=it's", "--none=None", "--targets=['q_proj', 'v_proj']"])
        #expect(x.argv[5] == #"{"fp16": true, "lr": 1e-05, "name": "it's", "none": null, "targets": ["q_proj", "v_proj"]}"#)
        #expect(Array(x.argv[6...7]) == ["--fp16", "True"])
        #expect(x.argv.count == 6 + 10)  // the unknown macro expands to nothing
        #expect(p.experiment.warnings.contains { $0.message.contains("${unknown_macro}") })
    }
}
