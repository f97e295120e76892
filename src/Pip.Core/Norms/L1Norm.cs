namespace Pip;

/// <summary>The L1 norm: the sum of absolute values; parts combine by summing.</summary>
internal sealed class L1Norm : INormAggregator
{
    public const string NormName = "L1";

    public string Name => NormName;

    public double Order => 1;

    public double Combine(ReadOnlySpan<double> partNorms)
    {
        double sum = 0;
        foreach (double part in partNorms)
        {
            sum += Math.Abs(part);
        }

        return sum;
    }

    public double Compute(ReadOnlySpan<float> values)
    {
        double sum = 0;
        foreach (float value in values)
        {
            sum += Math.Abs((double)value);
        }

        return sum;
    }

    public override string ToString() => NormName;
}
