using Microsoft.Extensions.Logging;
using Pip.Tokenization;
using Pip.Torch;
using Pip.Torch.Training;

namespace Pip.Cli.Infrastructure;

/// <summary>The lines of a training run's text: the training lines and the validation lines (a file, or held-out lines of the text).</summary>
/// <param name="TextFile">The training text (full path).</param>
/// <param name="Train">Its non-empty lines, trimmed (without the held-out ones).</param>
/// <param name="ValidFile">The validation file (full path), or null.</param>
/// <param name="Valid">The validation lines, or null without validation.</param>
/// <param name="HoldoutEvery">Without a validation file: every this many lines of the text were held out (0: none).</param>
internal sealed record TrainingLines(string TextFile, IReadOnlyList<string> Train, string? ValidFile, IReadOnlyList<string>? Valid, int HoldoutEvery)
{
    /// <summary>Where the validation lines come from, for results; null without validation.</summary>
    public string? ValidationDescription => ValidFile ?? (HoldoutEvery > 1 ? $"every {HoldoutEvery}th line of --text" : null);

    /// <summary>Every line, training and validation, in order.</summary>
    public IEnumerable<string> All => Valid is null ? Train : Train.Concat(Valid);
}

/// <summary>
/// The training text of the training commands (<c>recover</c>, <c>distill</c>, <c>idea</c>): each non-empty line of
/// a UTF-8 file is one document; its tokens (with the tokenizer's BOS when it adds one) and EOS are concatenated and
/// cut into sequences of <c>--seq-len</c> tokens (<see cref="PackedSequences"/>).
/// </summary>
internal static class TrainingText
{
    /// <summary>
    /// Reads the training text and the validation lines: <paramref name="validFile"/>, or every
    /// <paramref name="holdoutEvery"/>-th line of the text (0: no validation).
    /// </summary>
    /// <exception cref="CliInputException">A file is missing, or both or a bad hold-out are given.</exception>
    public static TrainingLines ReadLines(string textFile, string? validFile, int holdoutEvery)
    {
        var text = Path.GetFullPath(textFile);
        var lines = ReadLines(text, "Text file");
        var valid = validFile is null ? null : Path.GetFullPath(validFile);
        var validLines = valid is null ? null : ReadLines(valid, "Validation file");
        if (valid is not null && holdoutEvery > 0)
            throw new CliInputException("--valid and --holdout cannot be used together; give one.");
        if (holdoutEvery == 1)
            throw new CliInputException("--holdout 1 would hold out every line; use 2 or more.");
        if (holdoutEvery > 1)
        {
            validLines = lines.Where((_, i) => i % holdoutEvery == holdoutEvery - 1).ToList();
            lines = lines.Where((_, i) => i % holdoutEvery != holdoutEvery - 1).ToList();
        }
        return new TrainingLines(text, lines, valid, validLines, holdoutEvery);
    }

    /// <summary>
    /// Tokenizes and packs the lines: the training sequences (at least <paramref name="batchSize"/>) and the
    /// validation sequences (at least one), or a clear error naming the file and the option.
    /// </summary>
    public static (PackedSequences Train, PackedSequences? Validation) Pack(TrainingLines lines, HfTokenizer tokenizer, TorchCausalLM lm, int sequenceLength,
        int batchSize, int? maxTokens, ILogger logger)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var train = Pack(Tokenize(lines.Train, tokenizer, maxTokens, lm, lines.TextFile), sequenceLength, batchSize, lines.TextFile, "--text");
        PackedSequences? validation = null;
        if (lines.Valid is not null)
        {
            var what = lines.ValidFile ?? $"{lines.TextFile} (every {lines.HoldoutEvery}th line)";
            validation = Pack(Tokenize(lines.Valid, tokenizer, null, lm, what), sequenceLength, 1, what, lines.ValidFile is null ? "--holdout" : "--valid");
        }
        logger.LogInformation("Tokenized in {Seconds:F1} s: {Train:N0} training sequences of {Length} tokens{Valid}.",
            clock.Elapsed.TotalSeconds, train.Count, sequenceLength, validation is null ? "" : $", {validation.Count:N0} validation sequences");
        return (train, validation);
    }

    /// <summary>The non-empty lines of a text file, trimmed.</summary>
    public static List<string> ReadLines(string file, string what) =>
        ModelLoading.ReadText(file, what).Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();

    /// <summary>Each line's tokens (BOS when the tokenizer adds one) followed by EOS (when the tokenizer has one), concatenated.</summary>
    public static List<int> Tokenize(IReadOnlyList<string> lines, HfTokenizer tokenizer, int? maxTokens, TorchCausalLM lm, string what)
    {
        var tokens = new List<int>();
        foreach (var line in lines)
        {
            tokens.AddRange(tokenizer.Encode(line));
            if (tokenizer.EosTokenId is { } eos) tokens.Add(eos);
            if (maxTokens is { } max && tokens.Count >= max)
            {
                tokens.RemoveRange(max, tokens.Count - max);
                break;
            }
        }
        var outside = tokens.FirstOrDefault(t => t < 0 || t >= lm.Config.VocabSize, -1);
        if (outside >= 0)
            throw new CliInputException($"Model folder '{lm.SourceFolder}': its tokenizer gives token id {outside} for {what}, outside the model's vocabulary of {lm.Config.VocabSize}.");
        return tokens;
    }

    /// <summary>Packs tokens into sequences, or a clear error when they do not fill <paramref name="minimumSequences"/>.</summary>
    public static PackedSequences Pack(List<int> tokens, int sequenceLength, int minimumSequences, string what, string option)
    {
        int needed = minimumSequences * sequenceLength + 1;
        if (tokens.Count < needed)
            throw new CliInputException($"{option} '{what}' gives {tokens.Count:N0} tokens; at least {needed:N0} are needed ({minimumSequences} sequence(s) of --seq-len {sequenceLength} plus one).");
        return new PackedSequences(tokens, sequenceLength);
    }
}
