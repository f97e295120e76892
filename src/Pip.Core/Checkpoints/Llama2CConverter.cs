using System.Text;
using System.Text.Json.Nodes;
using Pip.Tokenization;

namespace Pip.Checkpoints;

/// <summary>What <see cref="Llama2CConverter.Convert"/> wrote.</summary>
/// <param name="OutputFolder">The full path of the Hugging Face folder.</param>
/// <param name="Config">The configuration written as <c>config.json</c>.</param>
/// <param name="ParameterCount">The number of parameters.</param>
/// <param name="TokenizerTokens">The number of tokenizer pieces.</param>
/// <param name="TokenizerMerges">The number of BPE merges derived from them.</param>
public sealed record Llama2CConversion(string OutputFolder, LlamaConfig Config, long ParameterCount, int TokenizerTokens, int TokenizerMerges);

/// <summary>
/// Converts a llama2.c checkpoint and its tokenizer to a Hugging Face folder (<c>config.json</c> for
/// <c>LlamaForCausalLM</c>, <c>model.safetensors</c>, <c>tokenizer.json</c>, <c>tokenizer_config.json</c>,
/// <c>generation_config.json</c>) that Pip and transformers load.
/// </summary>
/// <remarks>
/// The weights are read by <see cref="Llama2CCheckpoint"/> (q/k rows permuted to Hugging Face's rotary layout), the
/// tokenizer by <see cref="SentencePieceVocabulary"/> (a llama2.c <c>tokenizer.bin</c> or a SentencePiece
/// <c>.model</c>) and written as Llama 2's <c>tokenizer.json</c> by
/// <see cref="HfTokenizerWriter.WriteSentencePieceBpe"/>. Everything is checked before anything is written, and the
/// folder is written by <see cref="CheckpointWriter"/>: all or nothing.
/// </remarks>
public static class Llama2CConverter
{
    /// <summary>Converts a llama2.c model.</summary>
    /// <param name="modelPath">The llama2.c checkpoint (<c>.bin</c>, version 0).</param>
    /// <param name="tokenizerPath">The tokenizer: llama2.c's <c>tokenizer.bin</c> (extension <c>.bin</c>) or a SentencePiece <c>.model</c>.</param>
    /// <param name="outputFolder">The folder to create.</param>
    /// <param name="overwrite">Whether to replace an existing, non-empty folder.</param>
    /// <param name="cancellationToken">Cancels the conversion; the destination is then left as it was.</param>
    /// <returns>What was written.</returns>
    /// <exception cref="FileNotFoundException">An input file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">An input file is malformed, or the tokenizer does not fit the model.</exception>
    /// <exception cref="IOException">The destination exists and is not empty, and <paramref name="overwrite"/> is not set.</exception>
    public static Llama2CConversion Convert(string modelPath, string tokenizerPath, string outputFolder, bool overwrite = false, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        ArgumentException.ThrowIfNullOrEmpty(tokenizerPath);
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        var checkpoint = Llama2CCheckpoint.Open(modelPath);
        var header = checkpoint.Header;
        if (header.VocabSize < 3)
            throw new CheckpointFormatException(checkpoint.FilePath, $"vocab_size is {header.VocabSize}; a llama2.c model needs at least <unk>, BOS and EOS.", "vocab_size");
        var vocabulary = SentencePieceVocabulary.Load(tokenizerPath, header.VocabSize);
        var tokenizerFile = Path.GetFullPath(tokenizerPath);
        if (vocabulary.BosId != Llama2CCheckpoint.BosTokenId || vocabulary.EosId != Llama2CCheckpoint.EosTokenId)
            throw new CheckpointFormatException(tokenizerFile, $"BOS is id {vocabulary.BosId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"} and EOS id {vocabulary.EosId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}; llama2.c models use BOS 1 and EOS 2.");
        var config = header.ToLlamaConfig();

        var staging = Path.Combine(Path.GetTempPath(), $"pip-llama2c-{Guid.NewGuid():N}");
        try
        {
            HfTokenizerWriter.WriteSentencePieceBpe(staging, vocabulary, header.SeqLen);
            var generation = new JsonObject
            {
                ["bos_token_id"] = Llama2CCheckpoint.BosTokenId,
                ["eos_token_id"] = Llama2CCheckpoint.EosTokenId,
            };
            File.WriteAllText(Path.Combine(staging, "generation_config.json"), generation.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n", new UTF8Encoding(false));
            cancellationToken.ThrowIfCancellationRequested();
            var extras = new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" }.Select(f => Path.Combine(staging, f)).ToArray();
            CheckpointWriter.Save(outputFolder, config, checkpoint.GetTensors(), new CheckpointSaveOptions { Overwrite = overwrite, ExtraFiles = extras }, cancellationToken);
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
        return new Llama2CConversion(Path.GetFullPath(outputFolder), config, header.ParameterCount, vocabulary.Count, vocabulary.BuildMerges().Count);
    }
}
