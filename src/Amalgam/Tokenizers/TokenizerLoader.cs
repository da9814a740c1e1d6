namespace Amalgam.Tokenizers;

/// <summary>Finds and loads the tokenizer that sits in a model folder.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// Loads <c>tokenizer.amalgam.json</c> when present, else Hugging Face <c>tokenizer.json</c>, else a SentencePiece
    /// <c>tokenizer.model</c>.
    /// Throws <see cref="FileNotFoundException"/> when neither is there and <see cref="InvalidDataException"/>
    /// when the file is malformed or uses something we cannot reproduce exactly.
    /// </summary>
    public static ITextTokenizer Load(string modelDir)
    {
        if (!Directory.Exists(modelDir))
            throw new FileNotFoundException($"{modelDir}: model folder does not exist", modelDir);

        var amalgamPath = Path.Combine(modelDir, AmalgamTokenizer.FileName);
        if (File.Exists(amalgamPath))
            return AmalgamTokenizer.Load(amalgamPath);

        var hfPath = Path.Combine(modelDir, HuggingFaceBpeTokenizer.FileName);
        if (File.Exists(hfPath))
            return HuggingFaceBpeTokenizer.Load(hfPath);

        var spPath = Path.Combine(modelDir, SentencePieceModelTokenizer.FileName);
        if (File.Exists(spPath))
            return SentencePieceModelTokenizer.Load(spPath);

        throw new FileNotFoundException(
            $"{modelDir}: no tokenizer found (looked for {AmalgamTokenizer.FileName}, {HuggingFaceBpeTokenizer.FileName} and {SentencePieceModelTokenizer.FileName})",
            hfPath);
    }
}
