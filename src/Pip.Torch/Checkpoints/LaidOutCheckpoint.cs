using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using static TorchSharp.torch;

namespace Pip.Torch.Checkpoints;

/// <summary>
/// The configuration and weights of a model in one <see cref="CheckpointLayout"/>, ready for
/// <see cref="TorchSafeTensors.Save"/>: the model's own parameters for the per-layer layout (and for any model whose
/// layers need no padding), zero-padded copies of the layers that need them for the compatible layout.
/// </summary>
/// <remarks>
/// <para>Padding appends whole units at the end of a layer: a key/value group is G zero q_proj rows per query head
/// and d zero k_proj and v_proj rows (zero bias entries too), and G·d zero o_proj input columns; a channel is a zero
/// gate_proj and up_proj row (zero bias entries) and a zero down_proj column (OPT: a head is d zero q/k/v rows and
/// out_proj columns; a channel a zero fc1 row and fc2 column). The biases of o_proj/out_proj and down_proj/fc2 are not
/// touched. A padded unit's output meets only zero columns, so the function of the model does not change: the padded
/// checkpoint computes what the per-layer one computes (up to the order of floating-point sums).</para>
/// <para>Ownership: the padded tensors are owned by this object and disposed with it; the others are the model's live
/// parameters (not disposed). Keep the model alive and unchanged until the weights are written.</para>
/// </remarks>
public sealed class LaidOutCheckpoint : IDisposable
{
    private readonly List<Tensor> _owned;

    private LaidOutCheckpoint(CheckpointLayout layout, IModelConfig config, IReadOnlyDictionary<string, Tensor> weights, long parameterCount, long paddingParameterCount, List<Tensor> owned)
    {
        Layout = layout;
        Config = config;
        Weights = weights;
        ParameterCount = parameterCount;
        PaddingParameterCount = paddingParameterCount;
        _owned = owned;
    }

    /// <summary>The layout the request resolved to: <see cref="CheckpointLayout.PerLayer"/> or <see cref="CheckpointLayout.Compatible"/>.</summary>
    public CheckpointLayout Layout { get; }

    /// <summary>The configuration to write (uniform for the compatible layout).</summary>
    public IModelConfig Config { get; }

    /// <summary>The weights to write under their Hugging Face names.</summary>
    public IReadOnlyDictionary<string, Tensor> Weights { get; }

    /// <summary>The parameters the checkpoint stores (tied embeddings counted once), padding included.</summary>
    public long ParameterCount { get; }

    /// <summary>How many of <see cref="ParameterCount"/> are zeros added by padding (0 for the per-layer layout).</summary>
    public long PaddingParameterCount { get; }

    /// <summary>Lays out a model's configuration and weights.</summary>
    /// <param name="model">The model (Llama layout or OPT).</param>
    /// <param name="layout">The requested layout (<see cref="CheckpointLayout.Auto"/> is resolved by <see cref="CheckpointLayouts.Resolve"/>).</param>
    /// <returns>The laid-out checkpoint; dispose it after saving.</returns>
    /// <exception cref="NotSupportedException">The compatible layout was asked for and the model has no compatible form (the message says why).</exception>
    public static LaidOutCheckpoint Create(ICausalLMModule model, CheckpointLayout layout)
    {
        ArgumentNullException.ThrowIfNull(model);
        var resolved = CheckpointLayouts.Resolve(model.Config, layout);
        var weights = new Dictionary<string, Tensor>(model.NamedWeights(), StringComparer.Ordinal);
        long parameters = model.CountParameters().Total;
        if (resolved == CheckpointLayout.PerLayer)
            return new LaidOutCheckpoint(resolved, model.Config, weights, parameters, 0, []);

        var config = CheckpointLayouts.CompatibleConfig(model.Config);
        var names = weights.ToDictionary(p => p.Value.Handle, p => p.Key);
        var owned = new List<Tensor>();
        long padding = 0;
        try
        {
            using var noGrad = no_grad();
            for (var l = 0; l < model.Layers.Count; l++)
            {
                var layer = model.Layers[l];
                foreach (var kind in new[] { WidthUnitKind.Heads, WidthUnitKind.Channels })
                {
                    int units = WidthUnitParts.Count(layer, kind);
                    int target = TargetUnits(config, kind);
                    if (units > target)
                        throw new InvalidOperationException($"Layer {l} has {units} {Unit(kind)}, more than the {target} of the compatible shape.");
                    if (units == target)
                        continue;
                    foreach (var part in WidthUnitParts.Of(layer, kind))
                    {
                        padding += Pad(part.Linear.weight!, part.Axis, units, target);
                        if (part.Axis == WidthUnitParts.Axis.Rows && part.Linear.bias is { } bias)
                            padding += Pad(bias, WidthUnitParts.Axis.Rows, units, target);
                    }
                }
            }
        }
        catch
        {
            foreach (var t in owned) t.Dispose();
            throw;
        }

        return new LaidOutCheckpoint(resolved, config, weights, parameters + padding, padding, owned);

        long Pad(Tensor tensor, WidthUnitParts.Axis axis, int units, int target)
        {
            var name = names.TryGetValue(tensor.Handle, out var n) ? n : throw new InvalidOperationException("A projection's parameter is not among the model's named weights.");
            int dim = axis == WidthUnitParts.Axis.Rows ? 0 : 1;
            long perUnit = tensor.shape[dim] / units;
            var shape = tensor.shape.ToArray();
            shape[dim] = perUnit * (target - units);
            using var zero = zeros(shape, dtype: tensor.dtype, device: tensor.device);
            var padded = cat([tensor.detach(), zero], dim);
            owned.Add(padded);
            weights[name] = padded;
            return zero.numel();
        }
    }

    /// <summary>Disposes the padded tensors.</summary>
    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
    }

    private static int TargetUnits(IModelConfig config, WidthUnitKind kind) => (config, kind) switch
    {
        (LlamaConfig c, WidthUnitKind.Heads) => c.NumKeyValueHeads,
        (LlamaConfig c, _) => c.IntermediateSize,
        (OptConfig c, WidthUnitKind.Heads) => c.NumAttentionHeads,
        (OptConfig c, _) => c.FfnDim,
        _ => throw new NotSupportedException($"The architecture {config.Architecture} has no compatible layout."),
    };

    private static string Unit(WidthUnitKind kind) => kind == WidthUnitKind.Heads ? "heads (key/value groups)" : "channels";
}
