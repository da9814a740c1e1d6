using System.Text;
using System.Text.Json;
using Amalgam.Evaluation.Suites;
using Amalgam.Experts;
using Amalgam.Merging.Recipes;
using Amalgam.Models;
using Amalgam.Tensors;
using Amalgam.Tests.Tensors;
using CsCheck;

namespace Amalgam.Tests.Inputs;

/// <summary>
/// Property-based tests (CsCheck) of every reader of untrusted input: on any input each one either returns a value
/// that satisfies its invariants or throws one of its refusal types with a one-line message naming the source.
/// Anything else (a cast, a null dereference, a hang, a crash) fails the property, and CsCheck prints the seed and a
/// shrunk counterexample. One thread each: the machine is shared.
/// </summary>
public class InputPropertyTests
{
    const int Iterations = 400;

    /// <summary>One of the given values (index-based, so CsCheck shrinks towards the first).</summary>
    static Gen<T> Pick<T>(params T[] values) => Gen.Int[0, values.Length - 1].Select(i => values[i]);

    static void Refusal(Exception e, string prefix)
    {
        Assert.True(e is InvalidDataException or NotSupportedException, $"{e.GetType().Name}: {e.Message}");
        Assert.StartsWith(prefix, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    // ---- safetensors headers ----

    static readonly string[] DTypes = ["F32", "F16", "BF16", "I64", "I32", "U8", "BOOL"];
    static readonly Dictionary<string, int> Size = new() { ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1 };

    /// <summary>Names with controls, quotes, backslashes, non-ASCII and astral characters (but no lone surrogates, which JSON cannot carry as UTF-8).</summary>
    static readonly Gen<string> Name = Gen.OneOf(
        Gen.String[Gen.Char["a.z_0"], 1, 12],
        Gen.String[Gen.Char[' ', '\u00ff'], 1, 8],
        Pick("model.layers.0.self_attn.q_proj.weight", "\u001b[31m", "é😀", "a\"b\\c", "\t\n"));

    static readonly Gen<(string Name, string DType, long[] Shape)[]> Specs =
        Gen.Select(Name, Pick(DTypes), Gen.Long[0, 5].Array[0, 3])
            .Array[0, 8].Select(a => a.DistinctBy(s => s.Item1).Where(s => s.Item1 != "__metadata__").ToArray());

    /// <summary>An independent writer: entries in the given order, offsets packed, zero data.</summary>
    static byte[] FileBytes((string Name, string DType, long[] Shape)[] specs, Dictionary<string, string>? metadata = null)
    {
        using var json = new MemoryStream();
        long offset = 0;
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata is not null)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            foreach (var (name, dtype, shape) in specs)
            {
                long bytes = shape.Aggregate(1L, (a, b) => a * b) * Size[dtype];
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (var d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        var header = json.ToArray();
        var file = new byte[8 + header.Length + offset];
        BitConverter.TryWriteBytes(file.AsSpan(0, 8), (ulong)header.Length);
        header.CopyTo(file, 8);
        return file;
    }

    static SafeTensorsHeader Read(byte[] bytes) => SafeTensorsHeader.Read(new MemoryStream(bytes), "m.safetensors");

    [Fact]
    public void Safetensors_headers_round_trip_through_an_independent_writer()
    {
        Gen.Select(Specs, Gen.Dictionary(Name, Name)[0, 3]).Sample(x =>
        {
            var (specs, metadata) = x;
            var header = Read(FileBytes(specs, metadata));
            Assert.Equal(specs.OrderBy(s => s.Name, StringComparer.Ordinal).Select(s => (s.Name, s.DType, string.Join(",", s.Shape))),
                header.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => (t.Name, t.DType.ToString(), string.Join(",", t.Shape))));
            Assert.Equal(metadata.OrderBy(m => m.Key, StringComparer.Ordinal), header.Metadata.OrderBy(m => m.Key, StringComparer.Ordinal));
        }, iter: Iterations, threads: 1);
    }

    static void HeaderInvariants(SafeTensorsHeader h, long fileLength)
    {
        long data = fileLength - h.DataStart;
        long furthest = 0;
        foreach (var t in h.Tensors)
        {
            Assert.InRange(t.Begin, 0, t.End);
            Assert.InRange(t.End, t.Begin, data);
            if (t.End > t.Begin) { Assert.True(t.Begin >= furthest); furthest = t.End; }
        }
    }

    [Fact]
    public void Mutated_safetensors_files_are_read_consistently_or_refused_naming_the_file()
    {
        var mutation = Gen.Select(Gen.Int[0, 3], Gen.Int, Gen.Byte).Array[1, 6];
        Gen.Select(Specs, mutation).Sample(x =>
        {
            var (specs, edits) = x;
            var bytes = FileBytes(specs).ToList();
            foreach (var (kind, where, value) in edits)
            {
                if (bytes.Count == 0) break;
                int at = (int)((uint)where % (uint)bytes.Count);
                switch (kind)
                {
                    case 0: bytes[at] = value; break;                                   // overwrite
                    case 1: bytes.Insert(at, value); break;                             // insert
                    case 2: bytes.RemoveAt(at); break;                                  // delete
                    default: bytes.RemoveRange(at, bytes.Count - at); break;           // truncate
                }
            }
            var array = bytes.ToArray();
            try { HeaderInvariants(Read(array), array.Length); }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException) { Refusal(e, "m.safetensors: "); }
        }, iter: Iterations * 2, threads: 1);
    }

    /// <summary>Random JSON with the right field names and wrong or extreme values.</summary>
    static readonly Gen<string> JsonValue = Gen.OneOf(
        Pick("0", "-1", "1", "4", "1.5", "1e300", "-0", "9223372036854775807", "9223372036854775808", "18446744073709551616", "null", "true", "\"F32\"", "\"X\"", "[]", "{}"),
        Gen.Long.Select(l => l.ToString()),
        Pick("[0]", "[1, 2]", "[-1]", "[0, 0]", "[4, 0]", "[0, 4]", "[0, 9223372036854775807]", "[3037000500, 3037000500]", "[[1]]", "[\"1\"]"));

    [Fact]
    public void Structurally_random_safetensors_headers_are_read_consistently_or_refused()
    {
        var entry = Gen.Select(Pick("dtype", "shape", "data_offsets", "extra"), JsonValue).Array[0, 4]
            .Select(fs => "{" + string.Join(",", fs.Select(f => $"\"{f.Item1}\":{f.Item2}")) + "}");
        var header = Gen.Select(Pick("a", "b", "__metadata__", "a"), Gen.OneOf(entry, JsonValue)).Array[0, 4]
            .Select(es => "{" + string.Join(",", es.Select(e => $"\"{e.Item1}\":{e.Item2}")) + "}");
        Gen.Select(header, Gen.Int[0, 64]).Sample(x =>
        {
            var json = Encoding.UTF8.GetBytes(x.Item1);
            var file = new byte[8 + json.Length + x.Item2];
            BitConverter.TryWriteBytes(file.AsSpan(0, 8), (ulong)json.Length);
            json.CopyTo(file, 8);
            try { HeaderInvariants(Read(file), file.Length); }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException) { Refusal(e, "m.safetensors: "); }
        }, iter: Iterations * 2, threads: 1);
    }

    // ---- YAML: recipes and suite.yaml ----

    static readonly Gen<string> YamlScalar = Gen.OneOf(
        Pick("0", "1", "-1", "0.5", "1e400", "NaN", ".nan", "Infinity", ".inf", "true", "false", "null", "~", "''", "\"\"", "linear", "ties",
            "dare_ties", "task_arithmetic", "slerp", "float16", "bfloat16", "model", "adapter", "cat", "5B", "-5", "a/b", "'[x'", "\"\\u0000\"", "\"\\ud800\""),
        Gen.String[Gen.Char["a.z_0 "], 1, 6].Select(s => $"\"{s}\""));

    static readonly Gen<string> YamlKey = Pick("merge_method", "base_model", "models", "model", "parameters", "weight", "density", "epsilon", "lambda",
        "t", "filter", "value", "dtype", "out_dtype", "random_seed", "out_shard_size", "output", "rank", "normalize", "int8_mask", "slices", "name", "base",
        "tasks", "family", "held_out", "metric", "expert", "data", "prompt_format", "x");

    static Gen<string> YamlNode(int depth) => depth == 0 ? YamlScalar : Gen.Frequency(
        (3, YamlScalar),
        (1, YamlNode(depth - 1).Array[0, 3].Select(a => "[" + string.Join(", ", a) + "]")),
        (2, Gen.Select(YamlKey, YamlNode(depth - 1)).Array[0, 4].Select(a => "{" + string.Join(", ", a.Select(kv => $"{kv.Item1}: {kv.Item2}")) + "}")));

    /// <summary>A top-level block mapping of random fields and flow values.</summary>
    static readonly Gen<string> YamlDocument = Gen.Select(YamlKey, YamlNode(3)).Array[0, 7]
        .Select(a => string.Concat(a.Select(kv => $"{kv.Item1}: {kv.Item2}\n")));

    [Fact]
    public void Random_recipes_parse_or_are_refused_naming_the_recipe()
    {
        YamlDocument.Sample(yaml =>
        {
            try { MergeRecipe.Parse(yaml, "recipe.yaml"); }
            catch (Exception e) { Refusal(e, "recipe.yaml: "); }
        }, iter: Iterations * 2, threads: 1, print: y => y);
    }

    [Fact]
    public void Random_text_as_a_recipe_or_suite_is_refused_in_one_line()
    {
        Gen.String[Gen.OneOf(Gen.Char["a.z"], Pick(':', '-', '[', ']', '{', '}', '&', '*', '!', '|', '>', '?', '\'', '"', '#', '%', '@', '`', '\n', ' ', '\t', ',', '\\', '\u0000', '\ufeff')), 0, 60]
            .Sample(text =>
            {
                try { MergeRecipe.Parse(text, "recipe.yaml"); }
                catch (Exception e) { Refusal(e, "recipe.yaml: "); }
                try { Suite.Parse(text); }
                catch (Exception e) { Refusal(e, "suite.yaml"); }
            }, iter: Iterations * 2, threads: 1, print: t => JsonSerializer.Serialize(t));
    }

    [Fact]
    public void Random_suite_definitions_parse_or_are_refused_naming_suite_yaml()
    {
        var task = Gen.Select(YamlKey, YamlNode(1)).Array[0, 7].Select(a => "{" + string.Join(", ", a.Select(kv => $"{kv.Item1}: {kv.Item2}")) + "}");
        Gen.Select(YamlNode(1), YamlNode(1), task.Array[0, 3], Gen.Bool).Sample(x =>
        {
            var (name, @base, tasks, extra) = x;
            string yaml = $"name: {name}\nbase: {@base}\ntasks: [{string.Join(", ", tasks)}]\n" + (extra ? "prompt_format: \"{input} =\"\n" : "");
            try
            {
                var spec = Suite.Parse(yaml);
                Assert.All(spec.Tasks, t => Assert.False(string.IsNullOrEmpty(t.Name)));
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException) { Refusal(e, "suite.yaml"); }
        }, iter: Iterations, threads: 1, print: x => $"name: {x.Item1}, base: {x.Item2}, tasks: [{string.Join(", ", x.Item3)}]");
    }

    [Fact]
    public void Random_jsonl_lines_are_read_or_refused_by_file_and_line()
    {
        var field = Gen.Select(Pick("input", "target", "options", "x"), Gen.OneOf(
            Pick("\"a\"", "\"\"", "1", "null", "[]", "[\"a\", \"b\"]", "[1]", "{}", "\"\\ud800\"", "\"\\u0000\"", "true")));
        var line = Gen.OneOf(
            field.Array[0, 4].Select(fs => "{" + string.Join(", ", fs.Select(f => $"\"{f.Item1}\": {f.Item2}")) + "}"),
            Pick("", " ", "{", "[1]", "\"s\"", "{\"input\": \"a\", \"target\": \"b\"}"));
        using var t = new TempFolder();
        string file = t.File("split.jsonl");
        Gen.Select(line.Array[0, 4], Gen.Bool).Sample(x =>
        {
            File.WriteAllText(file, string.Join("\n", x.Item1));
            try
            {
                var examples = Suite.ReadJsonl(file, "split.jsonl", requireOptions: x.Item2);
                Assert.All(examples, e => Assert.False(string.IsNullOrEmpty(e.Input)));
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException) { Refusal(e, "split.jsonl"); }
        }, iter: Iterations, threads: 1, print: x => JsonSerializer.Serialize(x.Item1));
    }

    // ---- config.json and adapter_config.json ----

    static readonly Gen<string> ConfigValue = Gen.OneOf(
        Pick("0", "-1", "1", "2", "4", "8", "64", "1.5", "1e-5", "1e308", "2147483647", "2147483648", "-2147483648", "9223372036854775807",
            "null", "true", "false", "\"\"", "\"silu\"", "\"gelu\"", "\"float32\"", "\"bfloat16\"", "[]", "[1, 2]", "[1.5]", "{}", "{\"type\": \"linear\"}",
            "[\"LlamaForCausalLM\"]", "[\"MistralForCausalLM\"]", "\"llama\"", "\"q_proj\"", "[\"q_proj\", \"v_proj\"]", "\"(\"", "\"all-linear\"", "{\"q_proj\": 2}",
            "{\"(\": 2}", "\"LORA\"", "\"none\""),
        Gen.Int.Select(i => i.ToString()));

    static string RandomConfig(string basis, (string Key, string Value)[] fields)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(basis)!.AsObject();
        foreach (var (k, v) in fields) node[k] = System.Text.Json.Nodes.JsonNode.Parse(v);
        return node.ToJsonString();
    }

    [Fact]
    public void Random_model_configs_load_or_are_refused_naming_the_file()
    {
        string basis = File.ReadAllText(Path.Combine(TestData.Golden("llama_gqa"), "config.json"));
        var keys = Pick("architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling", "tie_word_embeddings",
            "sliding_window", "use_sliding_window", "bos_token_id", "eos_token_id", "pad_token_id", "torch_dtype");
        using var t = new TempFolder();
        string file = t.File("config.json");
        Gen.Select(keys, ConfigValue).Array[1, 5].Sample(fields =>
        {
            File.WriteAllText(file, RandomConfig(basis, fields));
            try
            {
                var c = DecoderConfig.Load(file);
                Assert.True(c.HeadDim > 0 && c.NumAttentionHeads % c.KeyValueHeads == 0 && c.ParameterCount > 0);
                _ = c.EosTokenIds; _ = c.BosId; _ = c.PadId; // readable once validated
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException) { Refusal(e, file + ": "); }
        }, iter: Iterations, threads: 1, print: f => string.Join(", ", f.Select(x => $"{x.Item1}: {x.Item2}")));
    }

    [Fact]
    public void Random_adapter_configs_load_or_are_refused_naming_the_file()
    {
        string basis = File.ReadAllText(Path.Combine(TestData.Golden("llama_gqa.lora_qv"), "adapter_config.json"));
        var keys = Pick("peft_type", "r", "lora_alpha", "use_rslora", "target_modules", "exclude_modules", "rank_pattern", "alpha_pattern", "use_dora",
            "fan_in_fan_out", "bias", "modules_to_save", "layers_to_transform");
        using var t = new TempFolder();
        string file = t.File("adapter_config.json");
        var modules = new[] { "model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", "lm_head" };
        Gen.Select(keys, ConfigValue).Array[1, 5].Sample(fields =>
        {
            File.WriteAllText(file, RandomConfig(basis, fields));
            try
            {
                var c = LoraConfig.Load(file);
                foreach (var m in modules) { LoraTargets.IsTargeted(c, m, "lm_head"); Assert.True(LoraTargets.Rank(c, m) > 0); }
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException) { Refusal(e, file + ": "); }
        }, iter: Iterations, threads: 1, print: f => string.Join(", ", f.Select(x => $"{x.Item1}: {x.Item2}")));
    }
}
