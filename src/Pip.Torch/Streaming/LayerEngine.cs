using Pip.Torch.Evaluation;
using Pip.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Streaming;

/// <summary>
/// Runs a decoder-only model one decoder layer at a time over all sequences of a pass, and gives every layer's input
/// and output activations, or the gradient of any signed combination of per-sequence losses with respect to every
/// layer's parameters, to a callback as soon as they exist. The same engine serves a model held in memory
/// (<see cref="TorchCausalLM"/>) and one streamed from its checkpoint (<see cref="StreamedCausalLM"/>), with the same
/// numbers; Pip's built-in metrics are written against it, and so can yours.
/// </summary>
/// <remarks>
/// <para>Forward: each layer's weights are loaded (streamed: straight from the safetensors files, converted to the
/// compute type), every sequence runs through it, the layer-boundary hidden states are kept, the weights are released.
/// Head: final norm and output projection (streamed: read in vocabulary chunks), per-sequence losses, and the gradient
/// with respect to the last hidden state. Backward (gradient passes): from the last layer to the first, the layer is
/// loaded again, recomputed from its saved input, differentiated with <c>autograd.grad</c> for its parameters and its
/// input; the callback reduces the parameter gradients, the input gradient is passed down, everything is released.
/// So at most one layer's weights and gradients exist at a time when streaming, and never a full gradient copy of the
/// model in either mode. When the saved layer inputs of a streamed gradient pass exceed
/// <see cref="StreamingOptions.SpillThresholdBytes"/> they are kept in a temporary file, so memory stays flat in the
/// layer count.</para>
/// <para>Ownership: an engine borrows its model (<see cref="For"/>); it owns nothing and needs no disposal, but must not
/// outlive the model. Tensors handed to callbacks are valid only during the callback.</para>
/// <para>Thread-safety: not thread-safe; one pass at a time. Cancellation is checked between layers.</para>
/// </remarks>
public sealed class LayerEngine
{
    private readonly ILayerStack _stack;

    internal LayerEngine(ILayerStack stack) => _stack = stack;

    /// <summary>The engine of a model: resident layers for a <see cref="TorchCausalLM"/>, streamed ones for a <see cref="StreamedCausalLM"/>.</summary>
    /// <param name="model">The model (borrowed).</param>
    /// <returns>The engine.</returns>
    /// <exception cref="NotSupportedException">The model is of neither type.</exception>
    public static LayerEngine For(IPrunableModel model) => model switch
    {
        null => throw new ArgumentNullException(nameof(model)),
        TorchCausalLM torch => new LayerEngine(new ResidentLayerStack(torch.Model, torch.OriginalLayerIndices)),
        StreamedCausalLM streamed => streamed.Engine,
        _ => throw new NotSupportedException($"The layer engine needs a {nameof(TorchCausalLM)} or a {nameof(StreamedCausalLM)} (Pip.Torch); got {model.GetType().Name}."),
    };

    /// <summary>The engine of a TorchSharp module held in memory.</summary>
    /// <param name="model">The module (borrowed).</param>
    /// <returns>The engine.</returns>
    public static LayerEngine InMemory(ICausalLMModule model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new LayerEngine(new ResidentLayerStack(model, null));
    }

    /// <summary>Whether layers are loaded from the checkpoint for each use (true) or resident in memory (false).</summary>
    public bool IsStreaming => _stack.IsStreaming;

    /// <summary>The current number of decoder layers.</summary>
    public int LayerCount => _stack.LayerCount;

    /// <summary>For each current layer, its index in the checkpoint as first loaded.</summary>
    public IReadOnlyList<int> OriginalLayerIndices => _stack.OriginalLayerIndices;

    /// <summary>The device computations run on.</summary>
    public Device Device => _stack.Device;

    /// <summary>The type computations run in.</summary>
    public ScalarType ComputeType => _stack.ComputeType;

    /// <summary>The vocabulary size.</summary>
    public int VocabSize => _stack.Config.VocabSize;

    /// <summary>The number of parameters of a current layer.</summary>
    /// <param name="layer">The current layer index.</param>
    /// <returns>The count.</returns>
    public long GetLayerParameterCount(int layer) => _stack.LayerParameterCount(layer);

    /// <summary>Visits each layer's weights, first to last (no computation).</summary>
    /// <param name="onLayer">Receives the current layer index and the layer, valid during the call.</param>
    /// <param name="cancellationToken">Checked between layers.</param>
    public void VisitWeights(Action<int, nn.Module> onLayer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(onLayer);
        using var noGrad = no_grad();
        for (int l = 0; l < LayerCount; l++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var lease = _stack.Acquire(l);
            onLayer(l, lease.Module);
        }
    }

    /// <summary>Runs all sequences (one right-padded batch) forward through every layer and shows each layer's input and output.</summary>
    /// <param name="sequences">Token-id sequences of at least one token each.</param>
    /// <param name="onLayer">Receives each layer, first to last; valid during the call.</param>
    /// <param name="progress">Receives a report per layer, or null.</param>
    /// <param name="cancellationToken">Checked between layers.</param>
    public void Forward(IReadOnlyList<IReadOnlyList<int>> sequences, Action<LayerActivations> onLayer, IProgress<LayerPassProgress>? progress = null, CancellationToken cancellationToken = default) =>
        ForwardWithHooks(sequences, null, onLayer, progress, cancellationToken);

    /// <summary>
    /// As <see cref="Forward"/>, and before each layer runs, <paramref name="beforeLayer"/> is given the layer so that it
    /// can register forward hooks on its submodules (to see the inputs of its projections, say); the
    /// <see cref="IDisposable"/> it returns, if any (removing those hooks), is disposed after <paramref name="onLayer"/>.
    /// </summary>
    /// <param name="sequences">Token-id sequences of at least one token each; they run as one right-padded batch (hooks see padding positions too).</param>
    /// <param name="beforeLayer">Receives the current layer index and the layer, valid until the returned object is disposed; or null.</param>
    /// <param name="onLayer">Receives each layer, first to last; valid during the call.</param>
    /// <param name="progress">Receives a report per layer, or null.</param>
    /// <param name="cancellationToken">Checked between layers.</param>
    public void ForwardWithHooks(IReadOnlyList<IReadOnlyList<int>> sequences, Func<int, nn.Module, IDisposable?>? beforeLayer, Action<LayerActivations> onLayer,
        IProgress<LayerPassProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(onLayer);
        CheckTokens(sequences);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var batch = TokenBatch.Create(sequences, Device, requireTargets: false);
        using var context = _stack.CreateLayerContext(batch.Length, sequences.Count);
        var hidden = _stack.Embed(batch.Ids);
        for (int l = 0; l < LayerCount; l++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var layerScope = NewDisposeScope();
            using var lease = _stack.Acquire(l);
            using (var hooks = beforeLayer?.Invoke(l, lease.Module))
            {
                var output = _stack.ForwardLayer(lease, hidden, context);
                onLayer(new LayerActivations(l, OriginalLayerIndices[l], lease.Module, hidden, output, batch.TokenMask, batch.Lengths));
                hidden.Dispose();
                hidden = output.MoveToOuterDisposeScope();
            }

            progress?.Report(new LayerPassProgress(LayerPassPhase.Forward, l + 1, LayerCount));
        }
    }

    /// <summary>The mean next-token NLL (nats) of each sequence, optionally with some layers bypassed.</summary>
    /// <param name="sequences">Sequences of at least two tokens.</param>
    /// <param name="skipLayers">Current layer indices to bypass (their input is passed on), or null.</param>
    /// <param name="progress">Receives a report per layer, or null.</param>
    /// <param name="cancellationToken">Checked between layers.</param>
    /// <returns>One loss per sequence.</returns>
    public IReadOnlyList<double> SequenceLosses(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlySet<int>? skipLayers = null, IProgress<LayerPassProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        CheckTokens(sequences);
        var bad = skipLayers?.Where(l => l < 0 || l >= LayerCount).Order().ToArray() ?? [];
        if (bad.Length > 0)
            throw new ArgumentOutOfRangeException(nameof(skipLayers), $"Layers {string.Join(", ", bad)} cannot be skipped: the model has {LayerCount} layers.");
        using var noGrad = no_grad();
        using var batch = TokenBatch.Create(sequences, Device);
        var sums = ForwardNll(batch, skipLayers, progress, cancellationToken);
        return sums.Select((s, i) => s / batch.TargetCounts[i]).ToArray();
    }

    /// <summary>
    /// The mean NLL per token of all sequences for the model as it is and with each single layer bypassed, in one pass:
    /// at layer j the states in flight are the dense one and one per bypassed layer k &lt; j.
    /// </summary>
    /// <param name="sequences">Sequences of at least two tokens.</param>
    /// <param name="progress">Receives a report per layer, or null.</param>
    /// <param name="cancellationToken">Checked between layers.</param>
    /// <returns>The losses.</returns>
    public LayerSkipLosses SkipEachLayer(IReadOnlyList<IReadOnlyList<int>> sequences, IProgress<LayerPassProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        CheckTokens(sequences);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var batch = TokenBatch.Create(sequences, Device);
        using var context = _stack.CreateLayerContext(batch.Length, sequences.Count);
        var dense = _stack.Embed(batch.Ids);
        var skipped = new List<Tensor>();
        for (int l = 0; l < LayerCount; l++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var lease = _stack.Acquire(l);
            for (int k = 0; k < skipped.Count; k++)
            {
                var next = _stack.ForwardLayer(lease, skipped[k], context);
                skipped[k].Dispose();
                skipped[k] = next;
            }

            skipped.Add(dense);
            dense = _stack.ForwardLayer(lease, dense, context);
            progress?.Report(new LayerPassProgress(LayerPassPhase.Forward, l + 1, LayerCount));
        }

        double total = batch.TargetCounts.Sum();
        double denseLoss = Head(dense, batch, null).NllSums.Sum() / total;
        var losses = skipped.Select(h => Head(h, batch, null).NllSums.Sum() / total).ToArray();
        progress?.Report(new LayerPassProgress(LayerPassPhase.Head, 1, 1));
        return new LayerSkipLosses(denseLoss, losses);
    }

    /// <summary>
    /// Perplexity of token sequences with fixed-length windows (see <see cref="Perplexity.PlanWindows"/>), windows batched
    /// up to <paramref name="maxBatchTokens"/> tokens per pass over the layers.
    /// </summary>
    /// <param name="sequences">Token-id sequences; each is windowed separately.</param>
    /// <param name="windowLength">The window length.</param>
    /// <param name="stride">The stride, or null for non-overlapping windows.</param>
    /// <param name="maxBatchTokens">Tokens run through the layers together (more: fewer weight loads when streaming, more memory).</param>
    /// <param name="progress">Receives a report after each batch of windows, or null.</param>
    /// <param name="cancellationToken">Checked between layers.</param>
    /// <returns>The result (same definition as <see cref="Perplexity.EvaluateSequences"/>).</returns>
    public PerplexityResult Perplexity(IReadOnlyList<IReadOnlyList<int>> sequences, int windowLength, int? stride = null, int maxBatchTokens = 8192,
        IProgress<PerplexityProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchTokens, 2);
        CheckTokens(sequences, allowEmpty: true);
        var windows = new List<(IReadOnlyList<int> Tokens, int ScoredFrom)>();
        foreach (var seq in sequences)
        {
            foreach (var w in Evaluation.Perplexity.PlanWindows(seq.Count, windowLength, stride))
                windows.Add((seq.Skip(w.Start).Take(w.Length).ToArray(), w.ScoredFrom - w.Start));
        }

        if (windows.Count == 0)
            throw new ArgumentException("No token can be scored: every sequence is shorter than 2 tokens.", nameof(sequences));
        using var noGrad = no_grad();
        double nll = 0, scored = 0;
        int done = 0;
        while (done < windows.Count)
        {
            int count = 0, tokens = 0;
            while (done + count < windows.Count && (count == 0 || tokens + windows[done + count].Tokens.Count <= maxBatchTokens))
                tokens += windows[done + count++].Tokens.Count;
            var part = windows.Skip(done).Take(count).ToArray();
            using var batch = TokenBatch.Create(part.Select(p => p.Tokens).ToArray(), Device, part.Select(p => p.ScoredFrom).ToArray());
            nll += ForwardNll(batch, null, null, cancellationToken).Sum();
            scored += batch.TargetCounts.Sum();
            done += count;
            progress?.Report(new PerplexityProgress(done, windows.Count, (long)scored, nll / scored));
        }

        return new PerplexityResult(nll / scored, Math.Exp(nll / scored), (long)scored, windows.Count);
    }

    /// <summary>
    /// For each combination, the gradient of <c>Σ_j w_j · loss_j</c> with respect to every layer's parameters, delivered
    /// layer by layer from the last to the first.
    /// </summary>
    /// <param name="combinations">The loss combinations.</param>
    /// <param name="onLayer">Receives each (layer, combination) gradient, last layer first; for each layer the combinations come in order.</param>
    /// <param name="recompute">
    /// Resident models only (streaming always recomputes): false keeps each layer's autograd graph from the forward
    /// pass and runs one pass per combination; true recomputes each layer from its saved input in the backward pass.
    /// </param>
    /// <param name="progress">Receives a report per layer and phase, or null.</param>
    /// <param name="cancellationToken">Checked between layers.</param>
    /// <returns>For each combination, the loss of each of its sequences.</returns>
    public IReadOnlyList<IReadOnlyList<double>> Gradients(IReadOnlyList<LossCombination> combinations, Action<LayerGradients> onLayer, bool recompute = false,
        IProgress<LayerPassProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(combinations);
        ArgumentNullException.ThrowIfNull(onLayer);
        if (combinations.Count == 0) throw new ArgumentException("At least one loss combination is needed.", nameof(combinations));
        for (int c = 0; c < combinations.Count; c++)
        {
            var combination = combinations[c] ?? throw new ArgumentException($"Combination {c} is null.", nameof(combinations));
            if (combination.Weights.Count != combination.Sequences.Count)
                throw new ArgumentException($"Combination {c} has {combination.Sequences.Count} sequences but {combination.Weights.Count} weights.", nameof(combinations));
            CheckTokens(combination.Sequences);
        }

        if (IsStreaming) return GradientPass(combinations, 0, onLayer, true, progress, cancellationToken);
        var losses = new List<IReadOnlyList<double>>();
        for (int c = 0; c < combinations.Count; c++)
            losses.AddRange(GradientPass([combinations[c]], c, onLayer, recompute, progress, cancellationToken));
        return losses;
    }

    private List<IReadOnlyList<double>> GradientPass(IReadOnlyList<LossCombination> combinations, int firstIndex, Action<LayerGradients> onLayer, bool recompute,
        IProgress<LayerPassProgress>? progress, CancellationToken cancellationToken)
    {
        int n = combinations.Count, layers = LayerCount;
        using var scope = NewDisposeScope();
        var batches = combinations.Select(c => TokenBatch.Create(c.Sequences, Device)).ToArray();
        var contexts = batches.Select(b => _stack.CreateLayerContext(b.Length, b.Ids.shape[0])).ToArray();
        long stateBytes = batches.Sum(b => b.Ids.numel()) * _stack.Config.HiddenSize * (ComputeType == ScalarType.Float32 ? 4L : 2L) * layers;
        using var spill = recompute && stateBytes > _stack.SpillThresholdBytes ? new SpillFile(_stack.SpillDirectory) : null;
        var spilled = new SpillFile.Entry[layers, n];
        try
        {
            var inputs = new Tensor[layers, n];
            var outputs = new Tensor?[layers, n];
            var hidden = new Tensor[n];
            using (var mode = recompute ? no_grad() : enable_grad())
            {
                for (int c = 0; c < n; c++) hidden[c] = _stack.Embed(batches[c].Ids).detach();
                for (int l = 0; l < layers; l++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    using var lease = _stack.Acquire(l);
                    for (int c = 0; c < n; c++)
                    {
                        inputs[l, c] = recompute ? hidden[c] : hidden[c].requires_grad_(true);
                        var output = _stack.ForwardLayer(lease, inputs[l, c], contexts[c]);
                        outputs[l, c] = recompute ? null : output;
                        hidden[c] = recompute ? output : output.detach();
                        if (spill is not null)
                        {
                            spilled[l, c] = spill.Write(inputs[l, c]);
                            inputs[l, c].Dispose();
                        }
                    }

                    progress?.Report(new LayerPassProgress(LayerPassPhase.Forward, l + 1, layers));
                }
            }

            var upstream = new Tensor[n];
            var losses = new List<IReadOnlyList<double>>();
            if (n == 1)
            {
                var (sums, gradient) = Head(hidden[0], batches[0], combinations[0].Weights.ToArray());
                upstream[0] = gradient!;
                losses.Add(sums.Select((s, i) => s / batches[0].TargetCounts[i]).ToArray());
            }
            else
            {
                // All combinations through the head together (padded to one length; pads are masked), so that each
                // chunk of the output projection is read once per pass, not once per combination.
                using var headScope = NewDisposeScope();
                using var joinedBatch = TokenBatch.Create(combinations.SelectMany(c => c.Sequences).ToArray(), Device);
                long length = joinedBatch.Length;
                var joined = cat(hidden.Select(h => h.shape[1] == length ? h : nn.functional.pad(h, [0, 0, 0, length - h.shape[1]])).ToArray(), 0);
                var (sums, gradient) = Head(joined, joinedBatch, combinations.SelectMany(c => c.Weights).ToArray());
                int offset = 0;
                for (int c = 0; c < n; c++)
                {
                    int rows = combinations[c].Sequences.Count;
                    upstream[c] = gradient!.narrow(0, offset, rows).narrow(1, 0, batches[c].Length).contiguous().MoveToOuterDisposeScope();
                    losses.Add(Enumerable.Range(0, rows).Select(i => sums[offset + i] / batches[c].TargetCounts[i]).ToArray());
                    offset += rows;
                }
            }

            if (layers > 0)
            {
                foreach (var h in hidden) h.Dispose();
            }

            progress?.Report(new LayerPassProgress(LayerPassPhase.Head, 1, 1));
            for (int l = layers - 1; l >= 0; l--)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var lease = _stack.Acquire(l);
                var named = lease.Module.named_parameters().ToArray();
                var names = named.Select(p => p.name).ToArray();
                var parameters = named.Select(p => (Tensor)p.parameter).ToArray();
                for (int c = 0; c < n; c++)
                {
                    using var layerScope = NewDisposeScope();
                    IList<Tensor> grads;
                    if (spill is not null) inputs[l, c] = spill.Read(spilled[l, c], Device);
                    Tensor input = inputs[l, c];
                    using (enable_grad())
                    {
                        Tensor output;
                        if (recompute)
                        {
                            input = inputs[l, c].detach().requires_grad_(true);
                            output = _stack.ForwardLayer(lease, input, contexts[c]);
                        }
                        else
                        {
                            output = outputs[l, c]!;
                        }

                        grads = l == 0
                            ? [null!, .. autograd.grad([output], parameters, [upstream[c]])]
                            : autograd.grad([output], [input, .. parameters], [upstream[c]]);
                    }

                    onLayer(new LayerGradients(l, OriginalLayerIndices[l], firstIndex + c, lease.Module, names, parameters, grads.Skip(1).ToArray(), input));
                    upstream[c].Dispose();
                    outputs[l, c]?.Dispose();
                    inputs[l, c].Dispose();
                    if (l > 0) upstream[c] = grads[0].MoveToOuterDisposeScope();
                }

                progress?.Report(new LayerPassProgress(LayerPassPhase.Backward, layers - l, layers));
            }

            return losses;
        }
        finally
        {
            foreach (var context in contexts) context.Dispose();
            foreach (var batch in batches) batch.Dispose();
        }
    }

    /// <summary>Forward pass (no gradient) and the NLL sum of each sequence's scored targets.</summary>
    private double[] ForwardNll(TokenBatch batch, IReadOnlySet<int>? skipLayers, IProgress<LayerPassProgress>? progress, CancellationToken cancellationToken)
    {
        using var scope = NewDisposeScope();
        using var context = _stack.CreateLayerContext(batch.Length, batch.Ids.shape[0]);
        var hidden = _stack.Embed(batch.Ids);
        for (int l = 0; l < LayerCount; l++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (skipLayers is not null && skipLayers.Contains(l)) continue;
            using var layerScope = NewDisposeScope();
            using var lease = _stack.Acquire(l);
            var output = _stack.ForwardLayer(lease, hidden, context);
            hidden.Dispose();
            hidden = output.MoveToOuterDisposeScope();
            progress?.Report(new LayerPassProgress(LayerPassPhase.Forward, l + 1, LayerCount));
        }

        var sums = Head(hidden, batch, null).NllSums;
        progress?.Report(new LayerPassProgress(LayerPassPhase.Head, 1, 1));
        return sums;
    }

    /// <summary>
    /// The head: per-sequence NLL sums over the scored targets and, with <paramref name="weights"/>, the gradient of
    /// <c>Σ_j w_j · nll_j / count_j</c> with respect to <paramref name="last"/>. The vocabulary is processed in chunks
    /// of <see cref="ILayerStack.HeadChunkRows"/> rows (two passes: log-sum-exp, then gradient) when it does not fit one.
    /// </summary>
    private (double[] NllSums, Tensor? Gradient) Head(Tensor last, TokenBatch batch, double[]? weights)
    {
        long vocab = _stack.Config.VocabSize, chunk = _stack.HeadChunkRows;
        using var scope = NewDisposeScope();
        var coefficients = weights is null ? null
            : tensor(weights.Select((w, i) => batch.TargetCounts[i] > 0 ? (float)(w / batch.TargetCounts[i]) : 0f).ToArray(), device: Device);
        Tensor sums;
        Tensor? gradient = null;
        if (chunk >= vocab)
        {
            using var mode = weights is null ? no_grad() : enable_grad();
            var leaf = last.detach();
            if (weights is not null) leaf.requires_grad_(true);
            var logits = _stack.HeadLogits(_stack.FinalNorm(leaf), 0, vocab);
            var logProbs = logits[.., ..^1, ..].to_type(ScalarType.Float32).log_softmax(-1);
            var nll = -logProbs.gather(-1, batch.Targets.unsqueeze(-1)).squeeze(-1) * batch.TargetMask;
            sums = nll.sum(1);
            if (coefficients is not null)
                gradient = autograd.grad([(sums * coefficients).sum()], [leaf])[0];
        }
        else
        {
            Tensor lse, targetLogits;
            using (no_grad())
            {
                var normalised = _stack.FinalNorm(last)[.., ..^1, ..];
                lse = full(batch.Targets.shape, double.NegativeInfinity, ScalarType.Float32, Device);
                targetLogits = zeros(batch.Targets.shape, ScalarType.Float32, Device);
                for (long start = 0; start < vocab; start += chunk)
                {
                    using var chunkScope = NewDisposeScope();
                    long rows = Math.Min(chunk, vocab - start);
                    var logits = _stack.HeadLogits(normalised, start, rows).to_type(ScalarType.Float32);
                    lse.copy_(lse.logaddexp(logits.logsumexp(-1)));
                    var (index, inChunk) = ChunkTargets(batch.Targets, start, rows);
                    targetLogits.add_(logits.gather(-1, index.unsqueeze(-1)).squeeze(-1) * inChunk);
                }

                sums = ((lse - targetLogits) * batch.TargetMask).sum(1);
            }

            if (coefficients is not null)
            {
                using var grad = enable_grad();
                var leaf = last.detach().requires_grad_(true);
                var normalised = _stack.FinalNorm(leaf);
                var normalisedLeaf = normalised.detach().requires_grad_(true);
                var scored = normalisedLeaf[.., ..^1, ..];
                var coefficient = batch.TargetMask * coefficients.unsqueeze(1);
                var accumulated = zeros_like(normalisedLeaf);
                for (long start = 0; start < vocab; start += chunk)
                {
                    using var chunkScope = NewDisposeScope();
                    long rows = Math.Min(chunk, vocab - start);
                    var logits = _stack.HeadLogits(scored, start, rows);
                    var (index, inChunk) = ChunkTargets(batch.Targets, start, rows);
                    Tensor upstream;
                    using (no_grad())
                    {
                        upstream = (logits.to_type(ScalarType.Float32) - lse.unsqueeze(-1)).exp() * coefficient.unsqueeze(-1);
                        upstream = upstream.scatter_add(-1, index.unsqueeze(-1), (-coefficient * inChunk).unsqueeze(-1)).to_type(logits.dtype);
                    }

                    accumulated.add_(autograd.grad([logits], [normalisedLeaf], [upstream])[0]);
                }

                gradient = autograd.grad([normalised], [leaf], [accumulated])[0];
            }
        }

        var result = sums.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        return (result, gradient?.MoveToOuterDisposeScope());
    }

    private static (Tensor Index, Tensor InChunk) ChunkTargets(Tensor targets, long start, long rows)
    {
        var inChunk = targets.ge(start).logical_and(targets.lt(start + rows)).to_type(ScalarType.Float32);
        var index = (targets - start).clamp(0, rows - 1);
        return (index, inChunk);
    }

    private void CheckTokens(IReadOnlyList<IReadOnlyList<int>> sequences, bool allowEmpty = false)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (!allowEmpty && sequences.Count == 0) throw new ArgumentException("At least one sequence is needed.", nameof(sequences));
        int vocab = VocabSize;
        for (int s = 0; s < sequences.Count; s++)
        {
            var seq = sequences[s] ?? throw new ArgumentException($"Sequence {s} is null.", nameof(sequences));
            for (int i = 0; i < seq.Count; i++)
            {
                if (seq[i] < 0 || seq[i] >= vocab)
                    throw new ArgumentException($"Sequence {s}, token {i} is {seq[i]}, outside the vocabulary [0, {vocab}).", nameof(sequences));
            }
        }
    }
}
