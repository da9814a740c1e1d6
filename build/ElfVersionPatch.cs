// Makes TorchSharp's native wrapper (libLibTorchSharp.so) load on systems whose libstdc++ is older than
// the one it was linked against (Debian 12 / Ubuntu 22.04). See docs/formats.md#torchsharp-on-older-linux.
//
// The wrapper asks for GLIBCXX_3.4.32 through a single symbol, std::ios_base_library_init(), which GCC 13's
// <iostream> references only to force a new enough libstdc++; no relocation uses it, so it is never bound.
// The patch (a) gives every symbol of a missing version the global version index and (b) renames the
// missing version's verneed entry to a version the system has (vna_hash updated). It refuses to patch when
// a relocation uses a symbol of a missing version, because then the library really needs it.
//
// This file is compiled twice: by MSBuild's RoslynCodeTaskFactory as the PatchElfVersionNeeds task (see
// build/TorchSharpNative.targets) and into the tests, which define ELF_PATCH_WITHOUT_MSBUILD.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace Amalgam.Build
{
    /// <summary>What a library needs from one dependency, and what a patch changed.</summary>
    public sealed class ElfVersionReport
    {
        public List<string> Needed = new List<string>();
        public List<string> Missing = new List<string>();
        public List<string> PatchedSymbols = new List<string>();
        /// <summary>vna_hash as stored for each needed version (before any patch).</summary>
        public Dictionary<string, uint> StoredHashes = new Dictionary<string, uint>();
        public string? Replacement;
    }

    public static class ElfVersionPatch
    {
        const uint ShtDynsym = 11, ShtRela = 4, ShtVerneed = 0x6ffffffe, ShtVersym = 0x6fffffff, ShtVerdef = 0x6ffffffd;

        /// <summary>Version names a shared library defines (its .gnu.version_d section).</summary>
        public static HashSet<string> DefinedVersions(byte[] elf)
        {
            var result = new HashSet<string>();
            var sections = Sections(elf);
            foreach (var s in sections.Where(s => s.Type == ShtVerdef))
            {
                var strtab = sections[(int)s.Link];
                long off = s.Offset;
                while (true)
                {
                    ushort count = U16(elf, off + 6);
                    uint aux = U32(elf, off + 12), next = U32(elf, off + 16);
                    if (count > 0) result.Add(Str(elf, strtab.Offset + U32(elf, off + aux)));
                    if (next == 0) break;
                    off += next;
                }
            }
            return result;
        }

        /// <summary>
        /// Reports the versions <paramref name="elf"/> needs from <paramref name="dependency"/> that are not in
        /// <paramref name="available"/>, and when <paramref name="patch"/> is set rewrites them in place.
        /// </summary>
        public static ElfVersionReport Analyse(byte[] elf, string dependency, ISet<string> available, bool patch)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("only 64-bit little-endian ELF is supported");
            var report = new ElfVersionReport();
            var sections = Sections(elf);
            var verneed = sections.FirstOrDefault(s => s.Type == ShtVerneed);
            if (verneed == null) return report;
            var strtab = sections[(int)verneed.Link];

            var missing = new List<(long Aux, ushort Index, string Name)>();
            var present = new List<(uint NameOffset, string Name)>();
            long off = verneed.Offset;
            while (true)
            {
                ushort count = U16(elf, off + 2);
                uint file = U32(elf, off + 4), aux = U32(elf, off + 8), next = U32(elf, off + 12);
                bool target = Str(elf, strtab.Offset + file) == dependency;
                long a = off + aux;
                for (int i = 0; i < count; i++)
                {
                    uint nameOffset = U32(elf, a + 8);
                    string name = Str(elf, strtab.Offset + nameOffset);
                    if (target)
                    {
                        report.Needed.Add(name);
                        report.StoredHashes[name] = U32(elf, a);
                        if (available.Contains(name)) present.Add((nameOffset, name));
                        else missing.Add((a, U16(elf, a + 6), name));
                    }
                    uint anext = U32(elf, a + 12);
                    if (anext == 0) break;
                    a += anext;
                }
                if (next == 0) break;
                off += next;
            }
            report.Missing.AddRange(missing.Select(m => m.Name));
            if (!patch || missing.Count == 0) return report;
            if (present.Count == 0)
                throw new InvalidOperationException($"no version needed from {dependency} is available to stand in");

            var dynsym = sections.First(s => s.Type == ShtDynsym);
            var versym = sections.First(s => s.Type == ShtVersym);
            var dynstr = sections[(int)dynsym.Link];
            var missingIndexes = new HashSet<ushort>(missing.Select(m => m.Index));
            var affected = new Dictionary<uint, string>();
            long symbols = dynsym.Size / 24;
            for (uint i = 0; i < symbols; i++)
            {
                ushort v = (ushort)(U16(elf, versym.Offset + 2 * i) & 0x7fff);
                if (missingIndexes.Contains(v)) affected[i] = Str(elf, dynstr.Offset + U32(elf, dynsym.Offset + 24 * i));
            }
            foreach (var rela in sections.Where(s => s.Type == ShtRela && s.Link == Array.IndexOf(sections, dynsym)))
                for (long r = rela.Offset; r < rela.Offset + rela.Size; r += 24)
                {
                    uint sym = (uint)(BitConverter.ToUInt64(elf, (int)r + 8) >> 32);
                    if (affected.TryGetValue(sym, out var used))
                        throw new InvalidOperationException($"symbol {used} of a missing version is relocated: the library really needs it");
                }

            // Stand in a version the system has whose name is already in .dynstr, so no section grows.
            var stand = present.OrderByDescending(p => p.Name, StringComparer.Ordinal).First();
            foreach (var i in affected.Keys) W16(elf, versym.Offset + 2 * i, 1); // VER_NDX_GLOBAL
            foreach (var m in missing)
            {
                W32(elf, m.Aux, ElfHash(stand.Name));
                W32(elf, m.Aux + 8, stand.NameOffset);
            }
            report.PatchedSymbols.AddRange(affected.Values);
            report.Replacement = stand.Name;
            return report;
        }

        /// <summary>The System V ELF hash, as stored in vna_hash.</summary>
        public static uint ElfHash(string name)
        {
            uint h = 0;
            foreach (byte c in Encoding.ASCII.GetBytes(name))
            {
                h = (h << 4) + c;
                uint g = h & 0xf0000000;
                if (g != 0) h ^= g >> 24;
                h &= ~g;
            }
            return h;
        }

        sealed class Section
        {
            public uint Type, Link;
            public long Offset, Size;
        }

        static Section[] Sections(byte[] elf)
        {
            long shoff = (long)BitConverter.ToUInt64(elf, 0x28);
            ushort shentsize = U16(elf, 0x3a), shnum = U16(elf, 0x3c);
            if (shoff <= 0 || shoff + (long)shnum * shentsize > elf.Length) throw new InvalidDataException("section headers out of range");
            var result = new Section[shnum];
            for (int i = 0; i < shnum; i++)
            {
                long h = shoff + (long)i * shentsize;
                result[i] = new Section
                {
                    Type = U32(elf, h + 4),
                    Offset = (long)BitConverter.ToUInt64(elf, (int)h + 0x18),
                    Size = (long)BitConverter.ToUInt64(elf, (int)h + 0x20),
                    Link = U32(elf, h + 0x28),
                };
            }
            return result;
        }

        static ushort U16(byte[] b, long o) => BitConverter.ToUInt16(b, checked((int)o));
        static uint U32(byte[] b, long o) => BitConverter.ToUInt32(b, checked((int)o));
        static void W16(byte[] b, long o, ushort v) => BitConverter.GetBytes(v).CopyTo(b, o);
        static void W32(byte[] b, long o, uint v) => BitConverter.GetBytes(v).CopyTo(b, o);

        static string Str(byte[] b, long o)
        {
            int start = checked((int)o), end = start;
            while (end < b.Length && b[end] != 0) end++;
            return Encoding.ASCII.GetString(b, start, end - start);
        }

        /// <summary>The libstdc++ the dynamic loader gives this process (the one TorchSharp will get too).</summary>
        public static string? LoadedLibrary(string soname)
        {
            try
            {
                foreach (var line in File.ReadLines("/proc/self/maps"))
                {
                    int slash = line.IndexOf('/');
                    if (slash >= 0 && Path.GetFileName(line.Substring(slash)) is string f && f.StartsWith(soname, StringComparison.Ordinal))
                        return line.Substring(slash);
                }
            }
            catch (IOException) { }
            foreach (var dir in new[] { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib" })
                if (File.Exists(Path.Combine(dir, soname))) return Path.Combine(dir, soname);
            return null;
        }

        /// <summary>Patches <paramref name="library"/> in place (temporary file, then rename) when needed.</summary>
        public static ElfVersionReport PatchFile(string library, string dependency, string systemDependency)
        {
            var available = DefinedVersions(File.ReadAllBytes(systemDependency));
            var bytes = File.ReadAllBytes(library);
            var report = Analyse(bytes, dependency, available, patch: true);
            if (report.Replacement == null) return report;
            string temp = library + ".patching";
            File.WriteAllBytes(temp, bytes);
            File.Replace(temp, library, null);
            return report;
        }
    }

#if !ELF_PATCH_WITHOUT_MSBUILD
    /// <summary>MSBuild task: patch each given library when the system's libstdc++ lacks a version it needs.</summary>
    public sealed class PatchElfVersionNeeds : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required] public Microsoft.Build.Framework.ITaskItem[] Libraries { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        public override bool Execute()
        {
            if (!System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux)) return true;
            var system = ElfVersionPatch.LoadedLibrary("libstdc++.so.6");
            if (system == null)
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, "libstdc++.so.6 not found; TorchSharp native library left as it is");
                return true;
            }
            foreach (var item in Libraries)
            {
                if (!File.Exists(item.ItemSpec)) continue;
                try
                {
                    var report = ElfVersionPatch.PatchFile(item.ItemSpec, "libstdc++.so.6", system);
                    if (report.Replacement != null)
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High,
                            $"Amalgam (info, nothing to do): adapted {Path.GetFileName(item.ItemSpec)} in the output folder to this system's libstdc++: it asks for {string.Join(", ", report.Missing)} only through the unused symbol(s) {string.Join(", ", report.PatchedSymbols)} (see docs/formats.md)");
                }
                catch (Exception e) when (e is InvalidDataException || e is InvalidOperationException)
                {
                    Log.LogWarning($"Amalgam: cannot make {item.ItemSpec} load with {system}: {e.Message}");
                }
            }
            return true;
        }
    }
#endif
}
