using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Evaluation;

/// <summary>One evaluation window: the model sees tokens [Start, End) and scores tokens [ScoredFrom, End).</summary>
/// <param name="Start">The first token of the window.</param>
/// <param name="End">One past the last token of the window.</param>
/// <param name="ScoredFrom">The first scored token (at least Start + 1: the first token of a window has no prediction).</param>
public readonly record struct EvaluationWindow(int Start, int End, int ScoredFrom)
{
    /// <summary>The window length.</summary>
    public int Length => End - Start;

    /// <summary>The number of scored tokens.</summary>
    public int ScoredCount => End - ScoredFrom;
}

/// <summary>A perplexity result.</summary>
/// <param name="Nll">Mean negative log-likelihood per scored token (nats).</param>
/// <param name="Perplexity">exp(Nll).</param>
/// <param name="TokenCount">The number of scored tokens.</param>
/// <param name="Windows">The number of windows run.</param>
public sealed record PerplexityResult(double Nll, double Perplexity, long TokenCount, int Windows);

/// <summary>Progress of a perplexity evaluation.</summary>
/// <param name="WindowsDone">Windows finished.</param>
/// <param name="WindowsTotal">Windows planned.</param>
/// <param name="TokensScored">Tokens scored so far.</param>
/// <param name="RunningNll">Mean NLL of the tokens scored so far.</param>
public sealed record PerplexityProgress(int WindowsDone, int WindowsTotal, long TokensScored, double RunningNll);

/// <summary>
/// Perplexity of token sequences with fixed-length windows: non-overlapping windows (every token but the first of each
/// window is predicted once), or strided windows as in Hugging Face's "perplexity of fixed-length models" recipe
/// (window L, stride S: after the first window only the tokens not scored before, at most S, are scored).
/// </summary>
public static class Perplexity
{
    /// <summary>
    /// Plans the windows over a sequence. Without <paramref name="stride"/>: windows [0, L), [L, 2L), … each scoring all
    /// but its first token (a last window of a single token scores nothing and is left out). With a stride S (1 ≤ S ≤ L):
    /// windows start at 0, S, 2S, … and end at min(start + L, n), stopping after the first window that reaches n; each
    /// scores the tokens after the previous window's end (and never its own first token), so every token but token 0 is
    /// scored exactly once when S &lt; L.
    /// </summary>
    /// <param name="tokenCount">The sequence length n.</param>
    /// <param name="windowLength">The window length L (at least 2).</param>
    /// <param name="stride">The stride S, or null for non-overlapping windows.</param>
    /// <returns>The windows, in order; empty when n &lt; 2.</returns>
    public static IReadOnlyList<EvaluationWindow> PlanWindows(int tokenCount, int windowLength, int? stride = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tokenCount);
        if (windowLength < 2)
            throw new ArgumentOutOfRangeException(nameof(windowLength), windowLength, "The window length must be at least 2.");
        if (stride is { } s && (s < 1 || s > windowLength))
            throw new ArgumentOutOfRangeException(nameof(stride), s, $"The stride must be between 1 and the window length ({windowLength}).");

        var windows = new List<EvaluationWindow>();
        if (tokenCount < 2) return windows;
        if (stride is null)
        {
            for (var start = 0; start < tokenCount; start += windowLength)
            {
                var end = (int)Math.Min((long)start + windowLength, tokenCount);
                if (end - start >= 2) windows.Add(new EvaluationWindow(start, end, start + 1));
            }
            return windows;
        }

        var previousEnd = 0;
        for (var start = 0; start < tokenCount; start += stride.Value)
        {
            var end = (int)Math.Min((long)start + windowLength, tokenCount);
            var scoredFrom = Math.Max(previousEnd, start + 1);
            if (end > scoredFrom) windows.Add(new EvaluationWindow(start, end, scoredFrom));
            previousEnd = end;
            if (end == tokenCount) break;
        }
        return windows;
    }

    /// <summary>Evaluates the perplexity of one token sequence.</summary>
    /// <param name="model">The model (run in its own type; log-softmax in float32).</param>
    /// <param name="tokens">The token ids.</param>
    /// <param name="windowLength">The window length L.</param>
    /// <param name="stride">The stride, or null for non-overlapping windows (see <see cref="PlanWindows"/>).</param>
    /// <param name="progress">Receives a report after every window, or null.</param>
    /// <param name="cancellationToken">Checked before every window.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentException">No token would be scored, or a token is outside the vocabulary.</exception>
    public static PerplexityResult Evaluate(ICausalLMModule model, IReadOnlyList<int> tokens, int windowLength, int? stride = null,
        IProgress<PerplexityProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        return EvaluateSequences(model, new[] { tokens }, windowLength, stride, progress, cancellationToken);
    }

    /// <summary>
    /// Evaluates the perplexity over pre-tokenized sequences, each windowed separately (no window crosses two
    /// sequences); the NLL is the mean over all scored tokens.
    /// </summary>
    /// <param name="model">The model (run in its own type; log-softmax in float32).</param>
    /// <param name="sequences">The token-id sequences; those shorter than 2 tokens contribute nothing.</param>
    /// <param name="windowLength">The window length L.</param>
    /// <param name="stride">The stride, or null for non-overlapping windows (see <see cref="PlanWindows"/>).</param>
    /// <param name="progress">Receives a report after every window, or null.</param>
    /// <param name="cancellationToken">Checked before every window.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentException">No token would be scored, or a token is outside the vocabulary.</exception>
    public static PerplexityResult EvaluateSequences(ICausalLMModule model, IReadOnlyList<IReadOnlyList<int>> sequences, int windowLength,
        int? stride = null, IProgress<PerplexityProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sequences);
        var vocab = model.Config.VocabSize;
        var plans = new List<(IReadOnlyList<int> Tokens, EvaluationWindow Window)>();
        for (var s = 0; s < sequences.Count; s++)
        {
            var seq = sequences[s] ?? throw new ArgumentException($"Sequence {s} is null.", nameof(sequences));
            for (var i = 0; i < seq.Count; i++)
            {
                if (seq[i] < 0 || seq[i] >= vocab)
                    throw new ArgumentException($"Sequence {s}, token {i} is {seq[i]}, outside the vocabulary [0, {vocab}).", nameof(sequences));
            }
            foreach (var w in PlanWindows(seq.Count, windowLength, stride)) plans.Add((seq, w));
        }
        if (plans.Count == 0)
            throw new ArgumentException("No token can be scored: every sequence is shorter than 2 tokens.", nameof(sequences));

        using var noGrad = no_grad();
        double nllSum = 0;
        long scored = 0;
        for (var w = 0; w < plans.Count; w++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (tokens, window) = plans[w];
            nllSum += WindowNll(model, tokens, window);
            scored += window.ScoredCount;
            progress?.Report(new PerplexityProgress(w + 1, plans.Count, scored, nllSum / scored));
        }
        var nll = nllSum / scored;
        return new PerplexityResult(nll, Math.Exp(nll), scored, plans.Count);
    }

    /// <summary>The summed NLL (nats) of the scored tokens of one window.</summary>
    private static double WindowNll(ICausalLMModule model, IReadOnlyList<int> tokens, EvaluationWindow window)
    {
        using var scope = NewDisposeScope();
        var ids = new long[window.Length];
        for (var i = 0; i < ids.Length; i++) ids[i] = tokens[window.Start + i];
        var input = tensor(ids, new long[] { 1, ids.Length }, dtype: ScalarType.Int64, device: model.Device);
        using var decoded = model.Decode(new CausalLMInput(input));
        // Logits at positions p predict token p + 1; only the scored targets need the (large) head.
        var first = window.ScoredFrom - window.Start - 1;
        var hidden = decoded.LastHiddenState.narrow(1, first, window.ScoredCount);
        var logProbs = model.LmHead(hidden).to(ScalarType.Float32).log_softmax(-1);
        var targets = input.narrow(1, first + 1, window.ScoredCount).unsqueeze(-1);
        var nll = -logProbs.gather(-1, targets).to(ScalarType.Float64).sum();
        return nll.item<double>();
    }
}
