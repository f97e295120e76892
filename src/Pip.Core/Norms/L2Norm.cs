namespace Pip;

/// <summary>The Euclidean norm; parts combine as the square root of the sum of their squares (scaled so that large parts do not overflow).</summary>
internal sealed class L2Norm : INormAggregator
{
    public const string NormName = "L2";

    public string Name => NormName;

    public double Order => 2;

    public double Combine(ReadOnlySpan<double> partNorms)
    {
        double scale = 0;
        foreach (double part in partNorms)
        {
            double a = Math.Abs(part);
            if (double.IsNaN(a))
            {
                return double.NaN;
            }

            scale = Math.Max(scale, a);
        }

        if (scale == 0 || double.IsPositiveInfinity(scale))
        {
            return scale;
        }

        double sum = 0;
        foreach (double part in partNorms)
        {
            double r = part / scale;
            sum += r * r;
        }

        return scale * Math.Sqrt(sum);
    }

    public double Compute(ReadOnlySpan<float> values)
    {
        // A float squared fits in a double without overflow, so plain accumulation in double is exact enough.
        double sum = 0;
        foreach (float value in values)
        {
            sum += (double)value * value;
        }

        return Math.Sqrt(sum);
    }

    public override string ToString() => NormName;
}
