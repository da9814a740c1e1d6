using Amalgam.Evaluation.Suites;
using Amalgam.Merging.Recipes;
using Amalgam.Tensors;
using Amalgam.Tokenizers;
using SharpFuzz;

// One fuzz target per reader of untrusted bytes. A refusal (InvalidDataException, NotSupportedException) is the
// reader working; any other exception, a hang or a crash is a finding.
Action<Stream> target = (args.Length > 0 ? args[0] : "") switch
{
    "safetensors" => SafeTensors,
    "yaml" => Yaml,
    "tokenizer" => Tokenizer,
    _ => throw new ArgumentException("usage: Amalgam.Fuzz safetensors|yaml|tokenizer [FILE]"),
};
if (args.Length > 1)
{
    // Replays one input (a crash AFL++ found) outside the fuzzer, with the exception on stderr; run this with an
    // uninstrumented build (dotnet run), since instrumented code writes to AFL++'s shared memory.
    using var replay = File.OpenRead(args[1]);
    target(replay);
    Console.WriteLine("no finding");
    return;
}
Fuzzer.OutOfProcess.Run(target);

static void SafeTensors(Stream input)
{
    var bytes = new MemoryStream();
    input.CopyTo(bytes);
    bytes.Position = 0;
    try { SafeTensorsHeader.Read(bytes, "fuzz.safetensors"); }
    catch (InvalidDataException) { }
}

static void Yaml(Stream input)
{
    string text;
    using (var reader = new StreamReader(input)) text = reader.ReadToEnd();
    try { MergeRecipe.Parse(text, "recipe.yaml"); }
    catch (InvalidDataException) { }
    catch (NotSupportedException) { }
    try { Suite.Parse(text); }
    catch (InvalidDataException) { }
}

// tokenizer.json: the reader, then encoding and decoding a text that touches spaces, digits, non-ASCII and an added token.
static void Tokenizer(Stream input)
{
    string dir = Path.Combine(Path.GetTempPath(), $"amalgam-fuzz-tokenizer-{Environment.ProcessId}");
    Directory.CreateDirectory(dir);
    using (var file = File.Create(Path.Combine(dir, "tokenizer.json"))) input.CopyTo(file);
    try
    {
        var tokenizer = TokenizerLoader.Load(dir);
        var ids = tokenizer.Encode("lower  tést 123\n<|endoftext|>x", addBos: true);
        tokenizer.Decode(ids);
    }
    catch (InvalidDataException) { }
    // Encoding refuses a character the vocabulary cannot represent (no unk token): one line naming the file.
    catch (ArgumentException e) when (e.Message.StartsWith(Path.Combine(dir, "tokenizer.json") + ": ", StringComparison.Ordinal) && !e.Message.Contains('\n')) { }
}
