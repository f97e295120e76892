using Pip.Evaluation;
using Pip.Tokenization;
using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Evaluation;

/// <summary>A perplexity text tokenized once, whole.</summary>
/// <param name="Name">The dataset's name.</param>
/// <param name="Tokens">The token ids of the whole text (with the tokenizer's BOS when it adds one, as Hugging Face tokenizers do).</param>
/// <param name="Source">The text it was made from.</param>
public sealed record TokenizedCorpus(string Name, IReadOnlyList<int> Tokens, PerplexityText Source);

/// <summary>How a corpus is cut into evaluation windows.</summary>
public sealed record CorpusWindowing
{
    /// <summary>Default window: 128 tokens, LLM-Pruner's <c>--max_seq_len</c> default for its WikiText-2/PTB tables.</summary>
    public const int DefaultWindow = 128;

    /// <summary>The window length L in tokens (at least 2). Default <see cref="DefaultWindow"/>.</summary>
    public int Window { get; init; } = DefaultWindow;

    /// <summary>The stride, or null (the default) for non-overlapping windows as the pruning papers use.</summary>
    public int? Stride { get; init; }

    /// <summary>
    /// Whether a last window shorter than <see cref="Window"/> is left out (non-overlapping windows only). Default true:
    /// LLM-Pruner keeps <c>numel // seq_len</c> full windows.
    /// </summary>
    public bool DropPartialWindow { get; init; } = true;

    /// <summary>
    /// The most windows run in one forward pass (windows of equal shape only, so nothing is padded). Default 8. The
    /// result is the same as one window at a time up to floating-point rounding.
    /// </summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The window is below 2, the stride outside [1, window], or the batch size below 1.</exception>
    public void Validate()
    {
        if (Window < 2) throw new ArgumentOutOfRangeException(nameof(Window), Window, "The window length must be at least 2.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "The batch size must be at least 1.");
        if (Stride is { } s && (s < 1 || s > Window))
            throw new ArgumentOutOfRangeException(nameof(Stride), s, $"The stride must be between 1 and the window length ({Window}).");
    }

    /// <summary>The settings in words, for reports.</summary>
    public override string ToString() => Stride is { } s
        ? $"windows of {Window} tokens, stride {s} (each token scored once)"
        : $"non-overlapping windows of {Window} tokens{(DropPartialWindow ? ", last partial window dropped" : "")} (the first token of each window is not scored)";
}

/// <summary>
/// Perplexity of a whole corpus as the pruning papers compute it: the text tokenized once (LLM-Pruner:
/// <c>tokenizer("\n\n".join(rows)).input_ids</c>), cut into non-overlapping windows of L tokens, the last partial one
/// dropped, every token of a window after its first scored, perplexity = exp(mean NLL over all scored tokens).
/// The windows are those of <see cref="Perplexity.PlanWindows"/>; windows of equal shape run
/// <see cref="CorpusWindowing.BatchSize"/> at a time (log-softmax in float32, sums in float64), which gives
/// <see cref="Perplexity.Evaluate"/>'s result up to floating-point rounding, faster.
/// </summary>
public static class CorpusPerplexity
{
    /// <summary>Tokenizes a text whole, with the tokenizer's default BOS handling.</summary>
    /// <param name="text">The text.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <returns>The tokenized corpus.</returns>
    public static TokenizedCorpus Tokenize(PerplexityText text, HfTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(tokenizer);
        return new TokenizedCorpus(text.Name, tokenizer.Encode(text.Text), text);
    }

    /// <summary>The tokens that are evaluated: all of them, or, with <see cref="CorpusWindowing.DropPartialWindow"/> and no stride, the first ⌊n / L⌋·L.</summary>
    /// <param name="tokens">The corpus's tokens.</param>
    /// <param name="windowing">The windows.</param>
    /// <returns>The tokens to evaluate.</returns>
    public static IReadOnlyList<int> EvaluatedTokens(IReadOnlyList<int> tokens, CorpusWindowing windowing)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(windowing);
        windowing.Validate();
        if (windowing.Stride is not null || !windowing.DropPartialWindow) return tokens;
        var whole = tokens.Count / windowing.Window * windowing.Window;
        return whole == tokens.Count ? tokens : tokens.Take(whole).ToArray();
    }

    /// <summary>Evaluates a model's perplexity on a corpus.</summary>
    /// <param name="model">The model.</param>
    /// <param name="corpus">The tokenized corpus.</param>
    /// <param name="windowing">The windows, or null for the defaults (128 tokens, non-overlapping, partial window dropped).</param>
    /// <param name="progress">Receives a report after every window, or null.</param>
    /// <param name="cancellationToken">Checked before every window.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentException">The corpus is shorter than one window (when partial windows are dropped) or than 2 tokens, or a token is outside the vocabulary.</exception>
    public static PerplexityResult Evaluate(ICausalLMModule model, TokenizedCorpus corpus, CorpusWindowing? windowing = null,
        IProgress<PerplexityProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(corpus);
        windowing ??= new CorpusWindowing();
        var tokens = EvaluatedTokens(corpus.Tokens, windowing);
        if (tokens.Count < 2)
        {
            var where = corpus.Source.SourcePath is { } p ? $" ('{p}')" : "";
            throw new ArgumentException(
                $"Corpus '{corpus.Name}'{where} gives {corpus.Tokens.Count} tokens, too few to evaluate with {windowing}; use a shorter window or a longer text.",
                nameof(corpus));
        }

        var vocab = model.Config.VocabSize;
        for (var i = 0; i < tokens.Count; i++)
        {
            if (tokens[i] < 0 || tokens[i] >= vocab)
                throw new ArgumentException($"Corpus '{corpus.Name}': token {i} is {tokens[i]}, outside the model's vocabulary [0, {vocab}).", nameof(corpus));
        }

        var windows = Perplexity.PlanWindows(tokens.Count, windowing.Window, windowing.Stride);
        using var noGrad = no_grad();
        double nllSum = 0;
        long scored = 0;
        for (var start = 0; start < windows.Count;)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // A batch: consecutive windows of the same length and the same scored span.
            var first = windows[start];
            var end = start + 1;
            while (end < windows.Count && end - start < windowing.BatchSize
                && windows[end].Length == first.Length && windows[end].ScoredFrom - windows[end].Start == first.ScoredFrom - first.Start)
            {
                end++;
            }

            nllSum += BatchNll(model, tokens, windows, start, end);
            for (var w = start; w < end; w++) scored += windows[w].ScoredCount;
            start = end;
            progress?.Report(new PerplexityProgress(end, windows.Count, scored, nllSum / scored));
        }

        var nll = nllSum / scored;
        return new PerplexityResult(nll, Math.Exp(nll), scored, windows.Count);
    }

    /// <summary>The summed NLL (nats) of the scored tokens of windows [start, end), all of one shape, in one forward pass.</summary>
    private static double BatchNll(ICausalLMModule model, IReadOnlyList<int> tokens, IReadOnlyList<EvaluationWindow> windows, int start, int end)
    {
        using var scope = NewDisposeScope();
        var shape = windows[start];
        var count = end - start;
        var ids = new long[count * shape.Length];
        for (var b = 0; b < count; b++)
        {
            var w = windows[start + b];
            for (var i = 0; i < w.Length; i++) ids[b * shape.Length + i] = tokens[w.Start + i];
        }

        var input = tensor(ids, new long[] { count, shape.Length }, dtype: ScalarType.Int64, device: model.Device);
        using var decoded = model.Decode(new CausalLMInput(input));
        // Position p predicts token p + 1; only the scored positions go through the (large) head.
        var offset = shape.ScoredFrom - shape.Start - 1;
        var hidden = decoded.LastHiddenState.narrow(1, offset, shape.ScoredCount);
        var logProbs = model.LmHead(hidden).to(ScalarType.Float32).log_softmax(-1);
        var targets = input.narrow(1, offset + 1, shape.ScoredCount).unsqueeze(-1);
        return -logProbs.gather(-1, targets).to(ScalarType.Float64).sum().item<double>();
    }
}
