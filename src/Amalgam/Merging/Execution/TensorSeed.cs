using System.Security.Cryptography;
using System.Text;
using static TorchSharp.torch;

namespace Amalgam.Merging.Execution;

/// <summary>
/// A generator per tensor, seeded from (recipe seed, tensor name) by hashing: the same seed gives the same masks
/// on every run, whatever order tensors are merged in and whichever other tensors exist.
/// </summary>
public static class TensorSeed
{
    public static ulong For(long seed, string tensorName)
    {
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes($"{seed}\0{tensorName}"));
        return BitConverter.ToUInt64(bytes, 0) & long.MaxValue; // non-negative: torch seeds are int64 on some paths
    }

    public static Generator Generator(long seed, string tensorName) => new(For(seed, tensorName));
}
