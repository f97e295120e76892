using Pip.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Models;

/// <summary>The SwiGLU feed-forward block (Hugging Face <c>mlp</c>): <c>down_proj(silu(gate_proj(x)) * up_proj(x))</c>.</summary>
/// <remarks>The intermediate width is read from the weights, so a pruned block keeps working.</remarks>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // Hugging Face parameter names
    private Linear gate_proj;
    private Linear up_proj;
    private Linear down_proj;
#pragma warning restore IDE1006

    /// <summary>Creates the block with zero-filled parameters and the global <c>intermediate_size</c>.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public LlamaMlp(LlamaConfig config, ScalarType dtype, Device? device = null)
        : this(config, (config ?? throw new ArgumentNullException(nameof(config))).IntermediateSize, dtype, device)
    {
    }

    /// <summary>Creates the block with zero-filled parameters and a given width.</summary>
    /// <param name="config">The model configuration (hidden size, biases).</param>
    /// <param name="intermediateSize">The intermediate width of this layer.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public LlamaMlp(LlamaConfig config, int intermediateSize, ScalarType dtype, Device? device = null) : base(nameof(LlamaMlp))
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(intermediateSize);
        var bias = config.Family == DecoderFamily.Llama && config.MlpBias;
        gate_proj = ModelParts.Linear(config.HiddenSize, intermediateSize, bias, dtype, device);
        up_proj = ModelParts.Linear(config.HiddenSize, intermediateSize, bias, dtype, device);
        down_proj = ModelParts.Linear(intermediateSize, config.HiddenSize, bias, dtype, device);
        RegisterComponents();
    }

    /// <summary>The current intermediate width (from the shape of <c>gate_proj</c>).</summary>
    public long IntermediateSize => gate_proj.weight!.shape[0];

    /// <summary>
    /// Keeps only the given intermediate channels (in the given order): their gate_proj and up_proj rows (and bias
    /// entries) and their down_proj columns; down_proj's bias is kept whole. The projections are replaced by new,
    /// smaller <see cref="Linear"/> modules registered under the same names; the old ones are disposed.
    /// </summary>
    /// <param name="keptChannels">Distinct channel indices in the current numbering, at least one, checked by the caller.</param>
    internal void KeepChannels(IReadOnlyList<int> keptChannels)
    {
        using var noGrad = no_grad();
        using var index = tensor(keptChannels.Select(c => (long)c).ToArray(), device: gate_proj.weight!.device);
        var (oldGate, oldUp, oldDown) = (gate_proj, up_proj, down_proj);
        gate_proj = ModelParts.SelectRows(oldGate, index);
        up_proj = ModelParts.SelectRows(oldUp, index);
        down_proj = ModelParts.SelectColumns(oldDown, index);
        ClearModules();
        register_module("gate_proj", gate_proj);
        register_module("up_proj", up_proj);
        register_module("down_proj", down_proj);
        oldGate.Dispose();
        oldUp.Dispose();
        oldDown.Dispose();
    }

    /// <summary>
    /// Gives every projection (gate, up, down) a bias, zero where it had none, as <c>mlp_bias = true</c> asks of a
    /// Llama checkpoint; then adds <paramref name="downBiasIncrement"/> to down_proj's bias. Call under no_grad.
    /// </summary>
    /// <param name="downBiasIncrement">[hidden] added to down_proj's bias, or null.</param>
    internal void EnsureBiases(Tensor? downBiasIncrement)
    {
        foreach (var linear in new[] { gate_proj, up_proj, down_proj })
        {
            var weight = linear.weight!;
            linear.bias ??= new Parameter(zeros(weight.shape[0], dtype: weight.dtype, device: weight.device), weight.requires_grad);
        }
        if (downBiasIncrement is not null) down_proj.bias!.add_(downBiasIncrement.to(down_proj.bias.dtype));
    }

    /// <summary>The gate projection, Hugging Face name <c>gate_proj</c>.</summary>
    public Linear GateProj => gate_proj;

    /// <summary>The up projection, Hugging Face name <c>up_proj</c>.</summary>
    public Linear UpProj => up_proj;

    /// <summary>The down projection, Hugging Face name <c>down_proj</c>.</summary>
    public Linear DownProj => down_proj;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var gated = nn.functional.silu(gate_proj.call(input)) * up_proj.call(input);
        return down_proj.call(gated).MoveToOuterDisposeScope();
    }
}
