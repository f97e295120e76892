using Pip.Checkpoints;
using Pip.Torch.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Checkpoints;

/// <summary>
/// Writes a randomly initialised checkpoint of any size straight to disk, tensor by tensor and piece by piece, never
/// holding the model in memory: what a 70B-shaped benchmark model needs.
/// </summary>
/// <remarks>
/// <para>Values follow Hugging Face's initialisation, as <see cref="LlamaForCausalLM.CreateRandom"/> does: normal(0,
/// <c>std</c>) for linear and embedding weights, zeros for biases, ones for norm weights. Each tensor is drawn in
/// float32 on the CPU from its own generator, seeded from the seed and the tensor's position in the model's parameter
/// order, in pieces of <see cref="PieceElements"/> elements, then converted to the stored type; so a seed always gives
/// the same checkpoint, whatever the shard layout. (The values differ from <see cref="LlamaForCausalLM.CreateRandom"/>'s,
/// which draws the whole model from one generator.)</para>
/// <para>Memory: one piece (<see cref="PieceElements"/> float32 elements plus its converted copy) at a time. The
/// parameter names and shapes come from the model module built on the <c>meta</c> device, which allocates nothing.
/// The folder is written atomically and sharded above <see cref="CheckpointSaveOptions.MaxShardBytes"/>, as
/// <see cref="CheckpointWriter.Save"/> does.</para>
/// </remarks>
public static class RandomCheckpoint
{
    /// <summary>The number of elements drawn at once: 4 Mi (16 MiB of float32).</summary>
    public const long PieceElements = 4L << 20;

    /// <summary>Writes a random checkpoint folder (config.json and safetensors weights).</summary>
    /// <param name="destinationFolder">The folder to create (see <see cref="CheckpointWriter.Save"/> for overwrite rules).</param>
    /// <param name="config">The configuration (<see cref="LlamaConfig"/> or <see cref="OptConfig"/>); its <c>torch_dtype</c>
    /// is set to <paramref name="dtype"/>.</param>
    /// <param name="seed">The random seed.</param>
    /// <param name="dtype">The stored type: float32, bfloat16 or float16.</param>
    /// <param name="std">The standard deviation of the weights.</param>
    /// <param name="options">Options (overwrite, shard size, extra files such as a tokenizer); null for the defaults.</param>
    /// <param name="cancellationToken">Cancels the write; nothing is left behind.</param>
    /// <returns>The number of parameters written.</returns>
    /// <exception cref="ArgumentException">The configuration is invalid or the type is not a model type.</exception>
    public static long Write(string destinationFolder, IModelConfig config, long seed, ScalarType dtype = ScalarType.Float32, double std = 0.02,
        CheckpointSaveOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"The stored type must be float32, bfloat16 or float16, not {dtype}.", nameof(dtype));
        var stored = config.WithTorchDtype(dtype switch { ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", _ => "float32" });
        var layout = Layout(config);
        var sources = layout.Select((p, index) => new SafeTensorSource(p.Name, TorchSafeTensors.ToSafeTensorDType(dtype), p.Shape,
            (stream, ct) => WriteRandom(stream, p, DeriveSeed(seed, index), dtype, std, ct))).ToList();
        CheckpointWriter.Save(destinationFolder, stored, sources, options, cancellationToken);
        return layout.Sum(p => p.Shape.Aggregate(1L, (a, b) => a * b));
    }

    /// <summary>How a parameter is initialised.</summary>
    internal enum Init
    {
        Normal,
        Zeros,
        Ones,
    }

    /// <summary>One parameter of the model: its Hugging Face name, shape and initialisation, in registration order.</summary>
    internal sealed record Parameter(string Name, long[] Shape, Init Init);

    /// <summary>The parameters of the model a configuration describes, from the module built on the meta device (no memory).</summary>
    internal static IReadOnlyList<Parameter> Layout(IModelConfig config)
    {
        var meta = new Device(DeviceType.META);
        using var scope = NewDisposeScope();
        using nn.Module module = config switch
        {
            LlamaConfig llama => new LlamaForCausalLM(llama, ScalarType.Float32, meta),
            OptConfig opt => new OptForCausalLM(opt, ScalarType.Float32, meta),
            _ => throw new ArgumentException($"Random checkpoints of {config.Architecture} are not supported.", nameof(config)),
        };
        var norms = new HashSet<IntPtr>(module.modules().OfType<RmsNorm>().Select(n => n.Weight.Handle)
            .Concat(module.modules().OfType<LayerNorm>().Select(n => n.weight!.Handle)));
        return module.named_parameters()
            .Select(p => new Parameter(p.name, p.parameter.shape,
                norms.Contains(p.parameter.Handle) ? Init.Ones : p.name.EndsWith(".bias", StringComparison.Ordinal) ? Init.Zeros : Init.Normal))
            .ToList();
    }

    /// <summary>A per-tensor seed (SplitMix64 of the seed and the tensor's index), so tensors can be drawn in any order.</summary>
    internal static ulong DeriveSeed(long seed, int index)
    {
        var z = unchecked((ulong)seed + (0x9E3779B97F4A7C15UL * (ulong)(index + 1)));
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }

    private static void WriteRandom(Stream stream, Parameter parameter, ulong seed, ScalarType dtype, double std, CancellationToken cancellationToken)
    {
        var count = parameter.Shape.Aggregate(1L, (a, b) => a * b);
        using var generator = new Generator(seed, CPU);
        using var noGrad = no_grad();
        for (long start = 0; start < count; start += PieceElements)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var n = Math.Min(PieceElements, count - start);
            var piece = parameter.Init switch
            {
                Init.Ones => ones(n, dtype: dtype),
                Init.Zeros => zeros(n, dtype: dtype),
                _ => randn(n, dtype: ScalarType.Float32, device: CPU, generator: generator).mul_(std).to_type(dtype),
            };
            stream.Write(piece.bytes);
        }
    }
}
