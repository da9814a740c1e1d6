"""Goldens for tokenizer.model (SentencePiece protobuf) from the sentencepiece library itself (Debian's
python3-sentencepiece 0.1.97). Trains a tiny BPE model set up as Llama 2's is (byte fallback, identity normalization, extra whitespace kept), and records
sentencepiece's ids, pieces and decoded text for texts.json.

    /usr/bin/python3 tests/Golden/tokenizers/sentencepiece_goldens.py
"""
import io, json, os, random
import sentencepiece as spm

here = os.path.dirname(os.path.abspath(__file__))
texts = json.load(open(os.path.join(here, "texts.json"), encoding="utf-8"))
random.seed(0)
words = "the quick brown fox jumps over a lazy dog while hello world tokens merge into pieces and bytes fall back".split()
corpus = [" ".join(random.choice(words) for _ in range(12)) for _ in range(400)]
corpus += ["naïve café résumé", "日本語のテキスト", "1234567890", "don't I'll we've"] * 5

out = os.path.join(here, "sentencepiece-bpe")
os.makedirs(out, exist_ok=True)
model = io.BytesIO()
spm.SentencePieceTrainer.train(
    sentence_iterator=iter(corpus), model_writer=model, model_type="bpe", vocab_size=400, byte_fallback=True,
    character_coverage=1.0, normalization_rule_name="identity", remove_extra_whitespaces=False, bos_id=1, eos_id=2, unk_id=0, pad_id=-1, num_threads=1, minloglevel=2)
with open(os.path.join(out, "tokenizer.model"), "wb") as f:
    f.write(model.getvalue())
sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
goldens = []
for t in texts:
    ids = sp.encode(t)
    goldens.append({"text": t, "ids": ids, "pieces": [sp.id_to_piece(i) for i in ids], "decoded": sp.decode(ids)})
with open(os.path.join(out, "goldens.json"), "w", encoding="utf-8") as f:
    json.dump(goldens, f, ensure_ascii=False, indent=1)
    f.write("\n")
print(f"sentencepiece-bpe: vocab {sp.get_piece_size()}, {len(goldens)} goldens, {len(model.getvalue())} bytes")
