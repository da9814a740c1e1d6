using System.CommandLine;
using Amalgam.Experts;
using Amalgam.Inputs;
using Amalgam.Models;
using Amalgam.Tensors;
using Spectre.Console;

namespace Amalgam.Cli;

/// <summary><c>amalgam inspect</c>: what a checkpoint, adapter or safetensors file holds, and its parsed config.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "A checkpoint folder, a PEFT adapter folder or a .safetensors file." };
        var command = new Command("inspect", "List tensors (name, dtype, shape, size) and the parsed configuration.");
        command.Arguments.Add(path);
        command.SetAction(CliErrors.Guard(parse =>
        {
            string p = parse.GetValue(path)!;
            var console = AnsiConsole.Console;
            if (File.Exists(p))
            {
                using var file = SafeTensorsFile.Open(p);
                if (file.Metadata.Count > 0)
                    console.WriteLine("metadata: " + string.Join(", ", file.Metadata.Select(m => $"{Names.Escape(m.Key)}={Names.Escape(m.Value)}")));
                console.Write(TensorTable(file.Tensors));
            }
            else if (Directory.Exists(p) && File.Exists(Path.Combine(p, LoraAdapter.ConfigFile)))
            {
                using var adapter = LoraAdapter.Load(p);
                var c = adapter.Config;
                console.WriteLine($"PEFT LoRA adapter: r={c.R} lora_alpha={c.LoraAlpha} use_rslora={c.UseRslora} use_dora={c.UseDora} target_modules={Names.Escape(c.TargetModules.ToString())} base={Names.Escape(c.BaseModelNameOrPath)}" +
                                  (adapter.SavedTensors.Count > 0 ? $" modules_to_save: {Names.Escape(string.Join(", ", adapter.SavedTensors.Keys))}" : ""));
                var modules = new Table().AddColumns("module", "rank", "alpha", "scale");
                foreach (var (module, d) in adapter.Deltas)
                    modules.AddRow(Markup.Escape(Names.Escape(module)), d.Rank.ToString(), LoraTargets.Alpha(c, module).ToString("G6"), d.Scale.ToString("G6"));
                console.Write(modules);
                using var file = SafeTensorsFile.Open(Path.Combine(p, LoraAdapter.WeightsFile));
                console.Write(TensorTable(file.Tensors));
            }
            else if (Directory.Exists(p))
            {
                var config = DecoderConfig.Load(p);
                console.WriteLine($"{config.Architecture}: layers={config.NumHiddenLayers} hidden={config.HiddenSize} intermediate={config.IntermediateSize} " +
                                  $"heads={config.NumAttentionHeads} kv_heads={config.KeyValueHeads} head_dim={config.HeadDim} vocab={config.VocabSize} " +
                                  $"rope_theta={config.RopeTheta} rms_norm_eps={config.RmsNormEps} tied={config.TieWordEmbeddings} sliding_window={config.EffectiveSlidingWindow?.ToString() ?? "none"}");
                using var store = TensorStore.Open(p);
                console.WriteLine($"files: {string.Join(", ", store.Files.Select(Path.GetFileName))}");
                console.Write(TensorTable(store.Names.Select(store.Info)));
            }
            else throw new FileNotFoundException($"{p}: no such file or folder");
            return 0;
        }));
        return command;
    }

    /// <summary>Rows shown in the table: a rendered table costs far more per row than the header did (a million rows took minutes).</summary>
    public const int MaxRows = 2000;

    static Table TensorTable(IEnumerable<TensorInfo> tensors)
    {
        var table = new Table().AddColumns("tensor", "dtype", "shape", "bytes");
        long total = 0, elements = 0;
        int count = 0;
        foreach (var t in tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            if (count++ < MaxRows)
                table.AddRow(Markup.Escape(Names.Escape(t.Name)), t.DType.ToString(), Markup.Escape($"[{string.Join(", ", t.Shape)}]"), (t.End - t.Begin).ToString("N0"));
            total += t.End - t.Begin;
            elements += t.NumElements;
        }
        string more = count > MaxRows ? $" (the first {MaxRows:N0} shown)" : "";
        table.Caption(Markup.Escape($"{count:N0} tensors{more}, {elements:N0} parameters, {total:N0} bytes"));
        return table;
    }
}
