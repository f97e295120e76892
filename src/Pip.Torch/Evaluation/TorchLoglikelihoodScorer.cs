using Pip.Evaluation;
using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Evaluation;

/// <summary>
/// Scores log-likelihood requests with an <see cref="ICausalLMModule"/> the way lm-evaluation-harness's Hugging Face
/// model does: the input is (context + continuation)[-(maxLength + 1):][:-1] (left-truncated), the continuation's
/// tokens are read from the last positions, log-softmax in float32 under no_grad. The requests of one call are run as
/// right-padded batches (padding after a sequence cannot change a causal model's earlier positions).
/// </summary>
/// <remarks>Not thread-safe. Does not own the model.</remarks>
public sealed class TorchLoglikelihoodScorer : ILoglikelihoodScorer
{
    private readonly ICausalLMModule _model;

    /// <summary>Creates a scorer.</summary>
    /// <param name="model">The model.</param>
    /// <param name="encoder">Turns text requests into ids (see <see cref="RequestEncoder"/>).</param>
    /// <param name="maxLength">The longest input, or null for the model's <c>max_position_embeddings</c>.</param>
    /// <param name="maxBatchSize">The most sequences run in one forward pass.</param>
    public TorchLoglikelihoodScorer(ICausalLMModule model, RequestEncoder encoder, int? maxLength = null, int maxBatchSize = 8)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchSize, 1);
        if (maxLength is < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "Must be at least 1.");
        _model = model;
        Encoder = encoder;
        MaxLength = maxLength ?? model.Config.MaxPositionEmbeddings;
        MaxBatchSize = maxBatchSize;
    }

    /// <summary>Creates a scorer for a loaded model with its tokenizer.</summary>
    /// <param name="model">The model; it must have a tokenizer.</param>
    /// <param name="maxLength">The longest input, or null for the model's <c>max_position_embeddings</c>.</param>
    /// <param name="maxBatchSize">The most sequences run in one forward pass.</param>
    /// <exception cref="InvalidOperationException">The model has no tokenizer.</exception>
    public TorchLoglikelihoodScorer(TorchCausalLM model, int? maxLength = null, int maxBatchSize = 8)
        : this((model ?? throw new ArgumentNullException(nameof(model))).Model,
            RequestEncoder.FromTokenizer(model.Tokenizer ?? throw new InvalidOperationException("The model was loaded without a tokenizer.json; it cannot score text.")),
            maxLength, maxBatchSize)
    {
    }

    /// <summary>The request encoder.</summary>
    public RequestEncoder Encoder { get; }

    /// <summary>The longest input the model is given.</summary>
    public int MaxLength { get; }

    /// <summary>The most sequences run in one forward pass.</summary>
    public int MaxBatchSize { get; }

    /// <inheritdoc/>
    public IReadOnlyList<LoglikelihoodResult> Score(IReadOnlyList<LoglikelihoodRequest> requests, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        return ScoreTokens(requests.Select(Encoder.Encode).ToArray(), cancellationToken);
    }

    /// <summary>Scores requests already in token ids.</summary>
    /// <param name="requests">The requests.</param>
    /// <param name="cancellationToken">Checked before every batch.</param>
    /// <returns>One result per request, in order.</returns>
    /// <exception cref="ArgumentException">A request has no context or continuation token, a continuation longer than <see cref="MaxLength"/>, or a token outside the vocabulary.</exception>
    public IReadOnlyList<LoglikelihoodResult> ScoreTokens(IReadOnlyList<EncodedRequest> requests, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        var vocab = _model.Config.VocabSize;
        var inputs = new long[requests.Count][];
        var continuations = new int[requests.Count][];
        for (var r = 0; r < requests.Count; r++)
        {
            var request = requests[r] ?? throw new ArgumentException($"Request {r} is null.", nameof(requests));
            if (request.Context.Count == 0) throw new ArgumentException($"Request {r} has no context token.", nameof(requests));
            if (request.Continuation.Count == 0) throw new ArgumentException($"Request {r} has no continuation token.", nameof(requests));
            if (request.Continuation.Count > MaxLength)
                throw new ArgumentException($"Request {r}: its continuation has {request.Continuation.Count} tokens, more than the maximum length {MaxLength}.", nameof(requests));
            var whole = request.Context.Concat(request.Continuation).ToArray();
            foreach (var t in whole)
            {
                if (t < 0 || t >= vocab) throw new ArgumentException($"Request {r} holds token {t}, outside the vocabulary [0, {vocab}).", nameof(requests));
            }
            // lm-eval: (context + continuation)[-(max_length + 1):][:-1]
            var kept = Math.Min(whole.Length, MaxLength + 1);
            inputs[r] = whole.Skip(whole.Length - kept).Take(kept - 1).Select(t => (long)t).ToArray();
            continuations[r] = request.Continuation.ToArray();
        }

        var results = new LoglikelihoodResult[requests.Count];
        using var noGrad = no_grad();
        for (var start = 0; start < requests.Count; start += MaxBatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = Math.Min(MaxBatchSize, requests.Count - start);
            ScoreBatch(inputs.AsSpan(start, count), continuations.AsSpan(start, count), results.AsSpan(start, count));
        }
        return results;
    }

    private void ScoreBatch(ReadOnlySpan<long[]> inputs, ReadOnlySpan<int[]> continuations, Span<LoglikelihoodResult> results)
    {
        using var scope = NewDisposeScope();
        var length = 0;
        foreach (var input in inputs) length = Math.Max(length, input.Length);
        var ids = new long[inputs.Length * length];
        for (var b = 0; b < inputs.Length; b++) inputs[b].CopyTo(ids, b * length);
        var batch = tensor(ids, new long[] { inputs.Length, length }, dtype: ScalarType.Int64, device: _model.Device);
        using var decoded = _model.Decode(new CausalLMInput(batch));
        for (var b = 0; b < inputs.Length; b++)
        {
            // Positions inputLength - contLength … inputLength - 1 predict the continuation's tokens.
            var cont = continuations[b];
            var hidden = decoded.LastHiddenState[b].narrow(0, inputs[b].Length - cont.Length, cont.Length);
            var logProbs = _model.LmHead(hidden).to(ScalarType.Float32).log_softmax(-1);
            var targets = tensor(cont.Select(t => (long)t).ToArray(), dtype: ScalarType.Int64, device: _model.Device);
            var logLikelihood = logProbs.gather(-1, targets.unsqueeze(-1)).to(ScalarType.Float64).sum().item<double>();
            var greedy = logProbs.argmax(-1).eq(targets).all().item<bool>();
            results[b] = new LoglikelihoodResult(logLikelihood, greedy);
        }
    }
}
