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
    private readonly Linear gate_proj;
    private readonly Linear up_proj;
    private readonly Linear down_proj;
#pragma warning restore IDE1006

    /// <summary>Creates the block with zero-filled parameters.</summary>
    /// <param name="config">The model configuration.</param>
    /// <param name="dtype">The parameter type.</param>
    /// <param name="device">The parameter device, or null for the CPU.</param>
    public LlamaMlp(LlamaConfig config, ScalarType dtype, Device? device = null) : base(nameof(LlamaMlp))
    {
        ArgumentNullException.ThrowIfNull(config);
        var bias = config.Family == DecoderFamily.Llama && config.MlpBias;
        gate_proj = ModelParts.Linear(config.HiddenSize, config.IntermediateSize, bias, dtype, device);
        up_proj = ModelParts.Linear(config.HiddenSize, config.IntermediateSize, bias, dtype, device);
        down_proj = ModelParts.Linear(config.IntermediateSize, config.HiddenSize, bias, dtype, device);
        RegisterComponents();
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
