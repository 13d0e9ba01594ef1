"""LoRA SFT with TRL on a local model and a local Alpaca-style JSONL file: an ordinary TRL script, nothing Harrow-specific.

    python3 examples/trl_sft.py --model_name_or_path models/chat --dataset datasets/domain/train.jsonl \
        --output_dir out --learning_rate 1e-3 --num_train_epochs 2 --lora_r 8

Every SFTConfig / TrainingArguments flag works (--warmup_ratio, --per_device_train_batch_size, --eval_steps, ...).
Checkpoints (checkpoint-N/trainer_state.json) are saved every --save_steps and evaluated every --eval_steps on
--eval_dataset. Loss is on the completions only (TRL's prompt-completion format). --harrow_callback adds
harrow.HarrowCallback() (pip install ./python), which writes every log line to Harrow as it happens.
"""

from dataclasses import dataclass, field

from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, HfArgumentParser
from trl import SFTConfig, SFTTrainer


@dataclass
class ScriptArguments:
    model_name_or_path: str = field(default="models/chat")
    dataset: str = field(default="datasets/domain/train.jsonl", metadata={"help": "JSONL: instruction, input, output"})
    eval_dataset: str = field(default="datasets/domain/val.jsonl")
    max_samples: int = field(default=None, metadata={"help": "use the first N training records"})
    max_eval_samples: int = field(default=None)
    lora_r: int = field(default=8)
    lora_alpha: int = field(default=None, metadata={"help": "defaults to 2 * lora_r"})
    lora_dropout: float = field(default=0.05)
    lora_target: str = field(default="q_proj,v_proj")
    harrow_callback: bool = field(default=False)


def to_prompt_completion(record):
    prompt = record["instruction"] + ("\n" + record["input"] if record.get("input") else "")
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "completion": [{"role": "assistant", "content": record["output"]}],
    }


def load(path, limit):
    data = load_dataset("json", data_files=path, split="train")
    if limit:
        data = data.select(range(min(limit, len(data))))
    return data.map(to_prompt_completion, remove_columns=data.column_names)


def main():
    parser = HfArgumentParser((ScriptArguments, SFTConfig))
    # Defaults for a small CPU run; every one can be overridden on the command line.
    parser.set_defaults(
        eval_strategy="steps", eval_steps=10, save_steps=10, logging_steps=2, max_length=192,
        report_to="none", use_cpu=True, bf16=False, dataloader_num_workers=0, save_only_model=True,
    )
    script, config = parser.parse_args_into_dataclasses()

    tokenizer = AutoTokenizer.from_pretrained(script.model_name_or_path)
    model = AutoModelForCausalLM.from_pretrained(script.model_name_or_path, dtype="float32")
    peft_config = LoraConfig(
        r=script.lora_r, lora_alpha=script.lora_alpha or 2 * script.lora_r, lora_dropout=script.lora_dropout,
        target_modules=script.lora_target.split(","), task_type="CAUSAL_LM",
    )
    callbacks = []
    if script.harrow_callback:
        import harrow

        callbacks.append(harrow.HarrowCallback())

    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=load(script.dataset, script.max_samples),
        eval_dataset=load(script.eval_dataset, script.max_eval_samples) if config.eval_strategy != "no" else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    trainer.train()
    trainer.save_model()
    trainer.save_state()


if __name__ == "__main__":
    main()
