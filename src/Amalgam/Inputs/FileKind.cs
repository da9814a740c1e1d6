using System.Runtime.InteropServices;

namespace Amalgam.Inputs;

/// <summary>What a path names, from <c>statx(2)</c> (the one stat structure whose layout is the same on every Linux architecture).</summary>
public enum FileKind { Missing, Regular, Directory, SymbolicLink, Fifo, CharacterDevice, BlockDevice, Socket, Unknown }

internal static class FileKinds
{
    const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
    const uint StatxType = 0x1;

    [StructLayout(LayoutKind.Sequential, Size = 256)]
    struct Statx
    {
        public uint Mask, BlockSize;
        public ulong Attributes;
        public uint Links, Uid, Gid;
        public ushort Mode;
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    static extern int StatxNative(int dirFd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, out Statx buffer);

    static bool unavailable = !OperatingSystem.IsLinux();

    /// <summary>The kind of <paramref name="path"/> itself (a symbolic link is not followed).</summary>
    public static FileKind Of(string path)
    {
        if (!unavailable)
        {
            try
            {
                if (StatxNative(AtFdCwd, path, AtSymlinkNoFollow, StatxType, out var st) != 0) return FileKind.Missing;
                return (st.Mode & 0xF000) switch
                {
                    0x8000 => FileKind.Regular,
                    0x4000 => FileKind.Directory,
                    0xA000 => FileKind.SymbolicLink,
                    0x1000 => FileKind.Fifo,
                    0x2000 => FileKind.CharacterDevice,
                    0x6000 => FileKind.BlockDevice,
                    0xC000 => FileKind.Socket,
                    _ => FileKind.Unknown,
                };
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { unavailable = true; }
        }
        // Elsewhere: what .NET can tell (no FIFOs or devices on the systems this falls back for).
        var info = new FileInfo(path);
        if (info.LinkTarget is not null) return FileKind.SymbolicLink;
        if (Directory.Exists(path)) return FileKind.Directory;
        return info.Exists ? FileKind.Regular : FileKind.Missing;
    }

    public static string Describe(FileKind k) => k switch
    {
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.Directory => "a folder",
        FileKind.SymbolicLink => "a symbolic link",
        FileKind.Missing => "missing",
        _ => "not a regular file",
    };
}
