using Amalgam.Tensors;

namespace Amalgam.Tests.Tensors;

/// <summary>The folder-output contract in one process: swaps, stale temporaries, recovery, one writer at a time.</summary>
public class AtomicDirectoryTests
{
    static void WriteFolder(string dir, string content) =>
        AtomicDirectory.Write(dir, s => File.WriteAllText(Path.Combine(s, "a.txt"), content));

    [Fact]
    public void Replacing_swaps_the_whole_folder_and_leaves_nothing_beside_it()
    {
        using var t = new TempFolder();
        string out1 = t.File("out");
        WriteFolder(out1, "old");
        File.WriteAllText(Path.Combine(out1, "only-in-old.txt"), "x");
        WriteFolder(out1, "new");
        Assert.Equal(["a.txt"], Directory.GetFiles(out1).Select(Path.GetFileName));
        Assert.Equal("new", File.ReadAllText(Path.Combine(out1, "a.txt")));
        Assert.Equal(["out"], t.Entries());
    }

    [Fact]
    public void Stale_temporaries_of_the_same_output_are_removed_and_others_kept()
    {
        using var t = new TempFolder();
        WriteFolder(t.File("out"), "old");
        Directory.CreateDirectory(t.File(".out.tmp-killed"));
        File.WriteAllText(Path.Combine(t.File(".out.tmp-killed"), "big.safetensors"), "partial");
        Directory.CreateDirectory(t.File(".out.old-killed"));
        Directory.CreateDirectory(t.File(".other.tmp-1"));
        File.WriteAllText(t.File(".out.tmp-notes"), "a file by that name is also ours");
        WriteFolder(t.File("out"), "new");
        Assert.Equal([".other.tmp-1", "out"], t.Entries());
    }

    [Fact]
    public void An_old_output_set_aside_by_a_killed_two_rename_swap_comes_back_on_the_next_start()
    {
        using var t = new TempFolder();
        Directory.CreateDirectory(t.File(".out.old-0123"));
        File.WriteAllText(Path.Combine(t.File(".out.old-0123"), "a.txt"), "old");
        // The next writer fails while filling: OUT must be the old output again, not missing.
        Assert.Throws<InvalidOperationException>(() => AtomicDirectory.Write(t.File("out"), _ => throw new InvalidOperationException("fill failed")));
        Assert.Equal("old", File.ReadAllText(Path.Combine(t.File("out"), "a.txt")));
        Assert.Equal(["out"], t.Entries());
    }

    [Fact]
    public void A_second_writer_to_the_same_output_fails_naming_it_and_the_first_wins_whole()
    {
        using var t = new TempFolder();
        string dir = t.File("out");
        WriteFolder(dir, "old");
        using var filling = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var first = Task.Run(() => AtomicDirectory.Write(dir, s =>
        {
            File.WriteAllText(Path.Combine(s, "a.txt"), "first");
            filling.Set();
            release.Wait(TimeSpan.FromSeconds(30));
        }));
        Assert.True(filling.Wait(TimeSpan.FromSeconds(30)));
        var e = Assert.Throws<IOException>(() => WriteFolder(dir, "second"));
        Assert.StartsWith($"{dir}: another process is writing this output", e.Message);
        release.Set();
        first.Wait();
        Assert.Equal("first", File.ReadAllText(Path.Combine(dir, "a.txt")));
        Assert.Equal(["out"], t.Entries());
        WriteFolder(dir, "third"); // the lock is gone with its holder
        Assert.Equal("third", File.ReadAllText(Path.Combine(dir, "a.txt")));
    }

    [Fact]
    public void A_symbolic_link_or_a_file_at_the_output_is_refused_untouched()
    {
        using var t = new TempFolder();
        Directory.CreateDirectory(t.File("real"));
        File.WriteAllText(t.File("real/keep.txt"), "keep");
        File.CreateSymbolicLink(t.File("link"), t.File("real"));
        var e = Assert.Throws<IOException>(() => WriteFolder(t.File("link"), "x"));
        Assert.Contains("symbolic link", e.Message);
        File.WriteAllText(t.File("file"), "keep");
        Assert.Contains("a file of that name is in the way", Assert.Throws<IOException>(() => WriteFolder(t.File("file"), "x")).Message);
        Assert.Equal("keep", File.ReadAllText(t.File("real/keep.txt")));
        Assert.Equal(["file", "link", "real"], t.Entries());
    }

    [Fact]
    public void Outputs_overlapping_an_input_are_refused_naming_both()
    {
        using var t = new TempFolder();
        Directory.CreateDirectory(t.File("in/sub"));
        string input = t.File("in");
        Assert.Contains("is the input", Assert.Throws<IOException>(() => OutputGuard.Check(input, [input])).Message);
        Assert.Contains("lies inside the input", Assert.Throws<IOException>(() => OutputGuard.Check(t.File("in/sub/out"), [input])).Message);
        var e = Assert.Throws<IOException>(() => OutputGuard.Check(t.Path, [input]));
        Assert.Equal($"{t.Path}: the output folder contains the input {input}; choose an output outside every input", e.Message);
        File.CreateSymbolicLink(t.File("alias"), input);
        Assert.Contains("is the input", Assert.Throws<IOException>(() => OutputGuard.Check(t.File("alias"), [input])).Message);
        OutputGuard.Check(t.File("in-other"), [input]); // a sibling whose name starts the same is fine
        Assert.Contains("current folder", Assert.Throws<IOException>(() => OutputGuard.Check(Directory.GetCurrentDirectory(), [])).Message);
        Assert.Contains("current folder", Assert.Throws<IOException>(() => WriteFolder(Path.GetDirectoryName(Directory.GetCurrentDirectory())!, "x")).Message);
    }

    [Fact]
    public void An_atomic_file_removes_temporaries_of_dead_writers_only()
    {
        using var t = new TempFolder();
        File.WriteAllText(t.File(".r.json.tmp-999999999-abc"), "killed writer");
        File.WriteAllText(t.File($".r.json.tmp-{Environment.ProcessId}-abc"), "a writer in this process");
        AtomicFile.WriteAllText(t.File("r.json"), "{}");
        Assert.Equal([$".r.json.tmp-{Environment.ProcessId}-abc", "r.json"], t.Entries());
    }
}
