namespace Pip;

/// <summary>The maximum norm: the largest absolute value; parts combine by taking the maximum.</summary>
internal sealed class LInfNorm : INormAggregator
{
    public const string NormName = "Linf";

    public string Name => NormName;

    public double Order => double.PositiveInfinity;

    public double Combine(ReadOnlySpan<double> partNorms)
    {
        double max = 0;
        foreach (double part in partNorms)
        {
            double a = Math.Abs(part);
            if (double.IsNaN(a))
            {
                return double.NaN;
            }

            max = Math.Max(max, a);
        }

        return max;
    }

    public double Compute(ReadOnlySpan<float> values)
    {
        double max = 0;
        foreach (float value in values)
        {
            double a = Math.Abs((double)value);
            if (double.IsNaN(a))
            {
                return double.NaN;
            }

            max = Math.Max(max, a);
        }

        return max;
    }

    public override string ToString() => NormName;
}
