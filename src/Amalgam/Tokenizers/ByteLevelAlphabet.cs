using System.Text;

namespace Amalgam.Tokenizers;

/// <summary>
/// GPT-2's byte-to-character table used by byte-level BPE vocabularies: printable Latin-1 bytes stand for
/// themselves, the other bytes (controls, space, ...) are shifted to U+0100 and up so every token is visible text.
/// We need it only to look whole pieces up in the vocabulary; the BPE itself runs in Microsoft.ML.Tokenizers.
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = Build();

    private static char[] Build()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    public static char Symbol(byte b) => ByteToChar[b];

    /// <summary>The vocabulary spelling of <paramref name="text"/>: one symbol per UTF-8 byte.</summary>
    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }
}
