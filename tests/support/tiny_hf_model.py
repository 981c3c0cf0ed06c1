"""Writes a tiny, randomly initialised Llama-architecture model with its own
byte-level BPE tokenizer as a Hugging Face folder (safetensors), and a tiny
random PEFT LoRA adapter over it, for the lm-eval bridge tests (the tokenizer has a
chat template):
`python tiny_hf_model.py DIR [SEED]` writes DIR/model and DIR/adapter.
Grouped-query attention, rope_theta 50000, untied embeddings, weights large
enough that attention is not uniform. Deterministic for a seed; a few
hundred kilobytes; no network."""

import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


def corpus():
    words = "the a of to and in is it that was for on are with as his they at be this from".split()
    numbers = [str(n) for n in range(200)]
    for i in range(400):
        yield " ".join(words[(i * 7 + k) % len(words)] for k in range(9))
        yield f"What is {numbers[i % 200]} plus {numbers[(i * 3) % 200]}? Answer: {i}"


def main():
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>"
    )
    # A chat template in the shape of many instruct models'.
    fast.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    fast.save_pretrained(f"{out}/model")
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_theta=50000.0,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    # Larger weights than the default initialisation, so that log-likelihoods
    # differ clearly between answers.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(8.0)
    model.save_pretrained(f"{out}/model", safe_serialization=True)
    torch.manual_seed(seed + 1)
    lora = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj"],
        init_lora_weights=False,
    )
    adapter = get_peft_model(model, lora)
    with torch.no_grad():
        for name, parameter in adapter.named_parameters():
            if "lora_" in name:
                parameter.mul_(4.0)
    adapter.save_pretrained(f"{out}/adapter")


if __name__ == "__main__":
    main()
