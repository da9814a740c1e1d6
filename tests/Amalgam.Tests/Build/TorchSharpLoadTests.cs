using System.Reflection;
using Amalgam.Build;
using static TorchSharp.torch;

namespace Amalgam.Tests.Build;

/// <summary>
/// The build step that lets TorchSharp 0.107 load on Debian 12 (build/ElfVersionPatch.cs), checked on the real
/// libLibTorchSharp.so from the NuGet package, and TorchSharp itself loading and computing.
/// </summary>
public class TorchSharpLoadTests
{
    const string Libstdcxx = "libstdc++.so.6";
    static readonly string PackageDir = typeof(TorchSharpLoadTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "TorchSharpPackageDir").Value!;
    static string Original => Path.Combine(PackageDir, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    static string OutputCopy => Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    static HashSet<string> AllNeededBut(byte[] elf, params string[] absent)
    {
        var needed = ElfVersionPatch.Analyse(elf, Libstdcxx, new HashSet<string>(), patch: false).Needed;
        return needed.Except(absent).ToHashSet();
    }

    [Fact]
    public void The_packaged_wrapper_needs_GLIBCXX_3_4_32_and_nothing_newer()
    {
        var elf = File.ReadAllBytes(Original);
        var report = ElfVersionPatch.Analyse(elf, Libstdcxx, AllNeededBut(elf, "GLIBCXX_3.4.32"), patch: false);
        Assert.Equal(20, report.Needed.Count);
        Assert.Equal(["GLIBCXX_3.4.32"], report.Missing);
        // The stored vna_hash values (computed by the linker) agree with our ELF hash.
        foreach (var (name, hash) in report.StoredHashes) Assert.Equal(hash, ElfVersionPatch.ElfHash(name));
    }

    [Fact]
    public void Patching_unversions_only_the_unused_symbol_and_renames_the_requirement()
    {
        var elf = File.ReadAllBytes(Original);
        var available = AllNeededBut(elf, "GLIBCXX_3.4.32");
        var patched = (byte[])elf.Clone();
        var report = ElfVersionPatch.Analyse(patched, Libstdcxx, available, patch: true);
        Assert.Equal(["_ZSt21ios_base_library_initv"], report.PatchedSymbols);
        Assert.Contains(report.Replacement!, available);
        Assert.Empty(ElfVersionPatch.Analyse(patched, Libstdcxx, available, patch: false).Missing);
        // One versym entry (2 bytes) and one vernaux entry's hash and name (8 bytes) at most.
        int changed = elf.Zip(patched).Count(p => p.First != p.Second);
        Assert.InRange(changed, 2, 10);
        Assert.Equal(elf.Length, patched.Length);
    }

    [Fact]
    public void A_version_whose_symbols_are_really_used_is_never_patched_away()
    {
        var elf = File.ReadAllBytes(Original);
        var e = Assert.Throws<InvalidOperationException>(() => ElfVersionPatch.Analyse(elf, Libstdcxx, AllNeededBut(elf, "GLIBCXX_3.4.32", "GLIBCXX_3.4"), patch: true));
        Assert.Contains("is relocated", e.Message);
    }

    [Fact]
    public void The_output_copy_needs_nothing_this_system_lacks_and_is_untouched_where_nothing_was_missing()
    {
        var system = ElfVersionPatch.LoadedLibrary(Libstdcxx);
        Assert.NotNull(system);
        var defined = ElfVersionPatch.DefinedVersions(File.ReadAllBytes(system!));
        var original = File.ReadAllBytes(Original);
        var copy = File.ReadAllBytes(OutputCopy);
        Assert.Empty(ElfVersionPatch.Analyse(copy, Libstdcxx, defined, patch: false).Missing);
        bool systemTooOld = ElfVersionPatch.Analyse(original, Libstdcxx, defined, patch: false).Missing.Count > 0;
        Assert.Equal(!systemTooOld, original.AsSpan().SequenceEqual(copy));
    }

    [Fact]
    public void TorchSharp_loads_and_computes()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 1, 2, 3, 4 }, [2, 2]);
        var b = tensor(new float[] { 5, 6, 7, 8 }, [2, 2]);
        Assert.Equal([19f, 22f, 43f, 50f], a.matmul(b).data<float>().ToArray());
        var x = tensor(new float[] { 3 }, requires_grad: true);
        (x * x * x).sum().backward();
        Assert.Equal(27f, x.grad!.item<float>());
    }
}
