using System.Collections.Concurrent;
using System.Diagnostics;
using Pip.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch;

/// <summary>The shape a precision probe times: a decoder layer's MLP on a few tokens.</summary>
/// <param name="Hidden">The hidden size probed (the model's, capped at <see cref="TorchPrecision.MaxProbeHidden"/>).</param>
/// <param name="Intermediate">The MLP width probed (the model's, capped at 4 × <paramref name="Hidden"/>).</param>
public sealed record PrecisionProbeShape(int Hidden, int Intermediate)
{
    /// <summary>The probe shape of a model: its hidden size and MLP width, capped so that a probe costs milliseconds.</summary>
    /// <param name="config">The model configuration.</param>
    public static PrecisionProbeShape Of(IModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var (hidden, ffn) = config switch
        {
            LlamaConfig llama => (llama.HiddenSize, llama.IntermediateSize),
            OptConfig opt => (opt.HiddenSize, opt.FfnDim),
            _ => (config.HiddenSize, 4 * config.HiddenSize),
        };
        var h = Math.Clamp(hidden, 64, TorchPrecision.MaxProbeHidden);
        var f = Math.Clamp((int)((long)ffn * h / Math.Max(1, hidden)), 64, 4 * h);
        return new PrecisionProbeShape(h, f);
    }

    /// <summary>The shape used when no model is known: hidden 1024, MLP 4096.</summary>
    public static PrecisionProbeShape Default { get; } = new(TorchPrecision.MaxProbeHidden, 4 * TorchPrecision.MaxProbeHidden);
}

/// <summary>Chooses the type to compute in on a device.</summary>
/// <remarks>
/// <para>bfloat16 halves memory traffic and can be about twice as fast as float32 on CPUs with native bf16 matrix
/// instructions (AVX512-BF16, AMX) and on GPUs; on CPUs without them libtorch falls back to a scalar kernel hundreds of
/// times SLOWER than float32. But even where the instructions exist, the whole model need not be faster: the demo
/// model evaluates at 5.8 k tokens/s in bf16 and 7.4 k in float32 on an AVX-512-BF16 CPU whose bare matrix products
/// are faster in bf16 (norms, activations and small products pay conversions). So the choice follows measured speed
/// at the model's own shapes: <see cref="IsFast(ScalarType, Device?, PrecisionProbeShape)"/> times one decoder layer
/// (RMS norms, q/k/v projections, causal attention, output projection, the SiLU MLP and its weight-gradient product) on
/// 128 tokens in float32 and in the candidate type, and accepts the candidate only when it is at least
/// <see cref="RequiredSpeedup"/> times as fast: near a tie the timing would flip between runs on a busy machine, and
/// with it the numbers a model computes (bf16 and float32 losses differ in the fourth digit), so a tie goes to the
/// more accurate float32 (memory is the streaming engine's and <c>--dtype</c>'s business). CPUs whose flags show no bf16 instructions are refused without timing (a busy
/// machine could otherwise mislead the probe), and a 256³ product first rules out libtorch's scalar fallback in a few
/// milliseconds; the layer probe then costs tens of milliseconds. Decisions are cached per device, type and shape
/// class (<see cref="PrecisionProbeShape"/>: the model's sizes capped at <see cref="MaxProbeHidden"/>), once per
/// process. CUDA devices always compute fast in bf16/fp16.</para>
/// <para>Thread-safe. Global torch state is not changed.</para>
/// </remarks>
public static class TorchPrecision
{
    /// <summary>The largest hidden size probed; larger models are probed at this size, with their MLP ratio.</summary>
    public const int MaxProbeHidden = 1024;

    /// <summary>How many times faster than float32 a type must run to be chosen: 1.25 (a tie goes to float32).</summary>
    public const double RequiredSpeedup = 1.25;

    private const int ProbeTokens = 128;

    private const int ProbeHeadDim = 64;

    /// <summary>How many times each type's layer probe runs, alternating (the best time counts).</summary>
    internal const int LayerRounds = 3;

    private static readonly ConcurrentDictionary<(string Device, ScalarType Type, PrecisionProbeShape Shape), bool> Fast = new();

    /// <summary>Whether <paramref name="type"/> computes at least about as fast as float32 on <paramref name="device"/>, at the default probe shape.</summary>
    /// <param name="type">A floating type.</param>
    /// <param name="device">The device, or null for the CPU.</param>
    public static bool IsFast(ScalarType type, Device? device = null) => IsFast(type, device, PrecisionProbeShape.Default);

    /// <summary>
    /// Whether a decoder layer of the given shape runs in <paramref name="type"/> at least <see cref="RequiredSpeedup"/>
    /// times as fast as in float32 on <paramref name="device"/> (measured once per device, type and shape, then cached).
    /// </summary>
    /// <param name="type">A floating type.</param>
    /// <param name="device">The device, or null for the CPU.</param>
    /// <param name="shape">The shape class to probe (<see cref="PrecisionProbeShape.Of"/> of the model).</param>
    public static bool IsFast(ScalarType type, Device? device, PrecisionProbeShape shape) =>
        IsFast(type, device, shape, CpuBFloat16Support, TimeProbe);

    /// <summary>The decision, with the CPU-flag reader and the timer injected (for tests).</summary>
    internal static bool IsFast(ScalarType type, Device? device, PrecisionProbeShape shape, Func<bool?> cpuFlags, Func<ScalarType, Device, PrecisionProbeShape, bool, double> timeMs)
    {
        ArgumentNullException.ThrowIfNull(shape);
        device ??= CPU;
        if (type == ScalarType.Float32 || device.type == DeviceType.CUDA) return true;
        return Fast.GetOrAdd((device.ToString(), type, shape), _ => Decide(type, device, shape, cpuFlags, timeMs));
    }

    /// <summary>Forgets the cached decisions (tests).</summary>
    internal static void ClearCache() => Fast.Clear();

    /// <summary>
    /// The decision for one device, type and shape: refused when the CPU flags show no bf16 instructions; refused when a
    /// small matrix product is over 4 × slower (libtorch's scalar fallback); else the layer-shaped probe decides.
    /// </summary>
    internal static bool Decide(ScalarType type, Device device, PrecisionProbeShape shape, Func<bool?> cpuFlags, Func<ScalarType, Device, PrecisionProbeShape, bool, double> timeMs)
    {
        if (type == ScalarType.BFloat16 && device.type == DeviceType.CPU && cpuFlags() == false)
            return false;
        if (timeMs(type, device, shape, true) > 4 * timeMs(ScalarType.Float32, device, shape, true))
            return false;
        // Alternate the two types and keep each one's best, so a burst of load on a shared machine hits both alike.
        double candidate = double.MaxValue, reference = double.MaxValue;
        for (int i = 0; i < LayerRounds; i++)
        {
            candidate = Math.Min(candidate, timeMs(type, device, shape, false));
            reference = Math.Min(reference, timeMs(ScalarType.Float32, device, shape, false));
        }

        return candidate * RequiredSpeedup <= reference;
    }

    /// <summary>
    /// On Linux, whether the CPU has bf16 matrix instructions, read from <c>/proc/cpuinfo</c>: x86 AVX512-BF16, AMX-BF16 or
    /// AVX-512 (oneDNN's bf16 kernels need at least AVX512BW), Arm's bf16 extension. Null where unknown.
    /// </summary>
    internal static bool? CpuBFloat16Support()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!OperatingSystem.IsLinux() || !File.Exists(cpuinfo)) return null;
        try
        {
            foreach (string line in File.ReadLines(cpuinfo))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal) && !line.StartsWith("Features", StringComparison.Ordinal)) continue;
                var flags = line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
                return flags.Contains("avx512_bf16") || flags.Contains("amx_bf16") || flags.Contains("avx512bw") || flags.Contains("bf16");
            }
        }
        catch (IOException)
        {
        }

        return null;
    }

    /// <summary>
    /// The type to compute in: <paramref name="requested"/> when given; otherwise <paramref name="stored"/> (the
    /// checkpoint's type) when it is fast on the device at the default probe shape, else float32.
    /// </summary>
    /// <param name="requested">An explicit choice, or null for automatic.</param>
    /// <param name="stored">The type the weights are stored in.</param>
    /// <param name="device">The device, or null for the CPU.</param>
    public static ScalarType Resolve(ScalarType? requested, ScalarType stored, Device? device = null) =>
        requested ?? (IsFast(stored, device) ? stored : ScalarType.Float32);

    /// <summary>
    /// The type to compute a model in: <paramref name="requested"/> when given; otherwise <paramref name="stored"/> when
    /// one of the model's decoder layers (its shape class) runs about as fast in it as in float32, else float32.
    /// </summary>
    /// <param name="requested">An explicit choice, or null for automatic.</param>
    /// <param name="stored">The type the weights are stored in.</param>
    /// <param name="device">The device, or null for the CPU.</param>
    /// <param name="config">The model's configuration, whose sizes the probe uses.</param>
    public static ScalarType Resolve(ScalarType? requested, ScalarType stored, Device? device, IModelConfig config) =>
        requested ?? (IsFast(stored, device, PrecisionProbeShape.Of(config)) ? stored : ScalarType.Float32);

    /// <summary>The best of a few timings, in milliseconds, of a small square product (<paramref name="quick"/>) or of one decoder layer's forward (attention and MLP) plus the MLP's weight-gradient product.</summary>
    private static double TimeProbe(ScalarType type, Device device, PrecisionProbeShape shape, bool quick)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        // Constant values: speed does not depend on them (no denormals), and filling costs nothing next to drawing.
        Tensor Random(params long[] size) => full(size, 0.01, dtype: type, device: device);
        if (quick)
        {
            var a = Random(256, 256);
            var b = Random(256, 256);
            return Time(() => a.matmul(b), device);
        }

        var x = Random(ProbeTokens, shape.Hidden);
        var norm = ones(shape.Hidden, dtype: type, device: device);
        var qkv = Random(3 * shape.Hidden, shape.Hidden);
        var o = Random(shape.Hidden, shape.Hidden);
        var gate = Random(shape.Intermediate, shape.Hidden);
        var up = Random(shape.Intermediate, shape.Hidden);
        var down = Random(shape.Hidden, shape.Intermediate);
        long heads = Math.Max(1, shape.Hidden / ProbeHeadDim);
        Tensor Norm(Tensor t) => t * (t.pow(2).mean([-1], keepdim: true) + 1e-5).rsqrt() * norm;
        return Time(() =>
        {
            using var inner = NewDisposeScope();
            // Attention: projections, causal scaled dot-product attention over the probe's tokens, output projection.
            var parts = nn.functional.linear(Norm(x), qkv).view(ProbeTokens, 3, heads, -1).permute(1, 2, 0, 3);
            var attention = nn.functional.scaled_dot_product_attention(parts[0], parts[1], parts[2], is_casual: true);
            var h = x + nn.functional.linear(attention.permute(1, 0, 2).reshape(ProbeTokens, shape.Hidden), o);
            // MLP and the weight-gradient product of the backward pass.
            var a = nn.functional.silu(nn.functional.linear(Norm(h), gate)) * nn.functional.linear(Norm(h), up);
            var y = h + nn.functional.linear(a, down);
            y.t().matmul(a);
        }, device);
    }

    private static double Time(Action action, Device device)
    {
        action(); // first calls pay one-time costs
        double best = double.MaxValue;
        for (int i = 0; i < 2; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            if (device.type == DeviceType.CUDA) cuda.synchronize();
            best = Math.Min(best, watch.Elapsed.TotalMilliseconds);
        }

        return best;
    }
}
